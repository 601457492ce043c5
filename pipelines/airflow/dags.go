package airflow

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"citybrain/pipelines/extracts"
	"citybrain/pipelines/scheduler"
)

// DagOptions say how the generated tasks call citybrain.
type DagOptions struct {
	// Binary is the citybrain executable the Airflow workers run
	// (an absolute path on the workers).
	Binary string
	// Config and DataDir are passed as --config and --data-dir.
	Config, DataDir string
	// Retries and RetryDelaySeconds of every task.
	Retries, RetryDelaySeconds int
	// ModelsCron schedules the model-run DAG ("" = no model DAG).
	ModelsCron string
	// ModelsTimezone is its zone (default Asia/Shanghai).
	ModelsTimezone string
}

// DagFile is one generated file.
type DagFile struct {
	DagID string
	// Name is the file name (<dag_id>.py).
	Name string
	// Tasks are the task ids (extract names, or "models_run").
	Tasks []string
	Body  []byte
}

// ExtractsDagID names the DAG of one schedule: citybrain_extracts_<cron>_<zone>,
// e.g. citybrain_extracts_0_6_x_x_x_asia_shanghai for "0 6 * * *".
func ExtractsDagID(cron, tz string) string {
	if tz == "" {
		tz = scheduler.DefaultTimezone
	}
	c := strings.NewReplacer("*", "x", "@", "at_", "/", "_every_", ",", "_and_", "-", "_to_").Replace(strings.ToLower(cron))
	s := nonIdent.ReplaceAllString(c+"_"+strings.ToLower(tz), "_")
	return "citybrain_extracts_" + strings.Trim(s, "_")
}

// ModelsDagID is the model run's DAG.
const ModelsDagID = "citybrain_models"

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// Dags generates one DAG per extract schedule (cron + zone: every extract
// on it is one task calling `citybrain extracts run NAME --period <the
// run's scheduled time>`), and one for the model run (`citybrain models
// run`). Extracts without a schedule are left out.
func Dags(defs []extracts.Definition, o DagOptions) ([]DagFile, error) {
	if o.Binary == "" {
		return nil, fmt.Errorf("airflow dags: the citybrain binary path is required (--binary)")
	}
	type group struct {
		cron, tz string
		names    []string
	}
	groups := map[string]*group{}
	for _, d := range defs {
		if d.Schedule.Cron == "" {
			continue
		}
		if _, err := scheduler.ParseSchedule(d.Schedule.Cron, d.Schedule.Timezone); err != nil {
			return nil, fmt.Errorf("extract %s: %w", d.Name, err)
		}
		tz := d.Schedule.Timezone
		if tz == "" {
			tz = scheduler.DefaultTimezone
		}
		id := ExtractsDagID(d.Schedule.Cron, tz)
		g, ok := groups[id]
		if !ok {
			g = &group{cron: strings.TrimSpace(d.Schedule.Cron), tz: tz}
			groups[id] = g
		}
		g.names = append(g.names, d.Name)
	}
	ids := make([]string, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	base := []string{o.Binary}
	if o.Config != "" {
		base = append(base, "--config", o.Config)
	}
	if o.DataDir != "" {
		base = append(base, "--data-dir", o.DataDir)
	}
	var out []DagFile
	for _, id := range ids {
		g := groups[id]
		sort.Strings(g.names)
		var tasks []task
		for _, n := range g.names {
			cmd := append(append([]string{}, base...), "extracts", "run", n, "--trigger", "airflow", "--no-progress")
			tasks = append(tasks, task{ID: n, Command: shellJoin(cmd) + ` --period "{{ data_interval_end or logical_date or '' }}"`})
		}
		body, err := render(dagData{DagID: id, Cron: g.cron, TZ: g.tz, Tags: []string{"citybrain", "extracts"}, Tasks: tasks, O: o,
			Doc: "CityBrain 部门数据提取 departments' extracts on `" + g.cron + "` (" + g.tz + "): " + strings.Join(g.names, ", ")})
		if err != nil {
			return nil, err
		}
		out = append(out, DagFile{DagID: id, Name: id + ".py", Tasks: g.names, Body: body})
	}
	if o.ModelsCron != "" {
		tz := o.ModelsTimezone
		if tz == "" {
			tz = scheduler.DefaultTimezone
		}
		if _, err := scheduler.ParseSchedule(o.ModelsCron, tz); err != nil {
			return nil, fmt.Errorf("models schedule: %w", err)
		}
		cmd := append(append([]string{}, base...), "models", "run")
		body, err := render(dagData{DagID: ModelsDagID, Cron: o.ModelsCron, TZ: tz, Tags: []string{"citybrain", "models"}, O: o,
			Tasks: []task{{ID: "models_run", Command: shellJoin(cmd)}},
			Doc:   "CityBrain 模型计算 model run (risk portraits, crowd forecasts) on `" + o.ModelsCron + "` (" + tz + ")"})
		if err != nil {
			return nil, err
		}
		out = append(out, DagFile{DagID: ModelsDagID, Name: ModelsDagID + ".py", Tasks: []string{"models_run"}, Body: body})
	}
	return out, nil
}

// WriteDags writes the files into dir (atomically, so the dag processor
// never parses half a file) and returns them.
func WriteDags(dir string, files []DagFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		tmp := filepath.Join(dir, "."+f.Name+".tmp")
		if err := os.WriteFile(tmp, f.Body, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.Name)); err != nil {
			return err
		}
	}
	return nil
}

type task struct {
	ID, Command string
}

type dagData struct {
	DagID, Cron, TZ, Doc string
	Tags                 []string
	Tasks                []task
	O                    DagOptions
}

// shellJoin quotes arguments for bash.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:@") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'"'"'`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// py quotes a Python string literal.
func py(s string) string { return strconv.Quote(s) }

var dagTmpl = template.Must(template.New("dag").Funcs(template.FuncMap{"py": py}).Parse(`# Generated by ` + "`citybrain airflow dags`" + ` — do not edit: regenerate it instead.
# 由 citybrain airflow dags 生成，请勿手改。
# Runs on Apache Airflow 3 (and 2.4+): each task calls the citybrain binary.
import datetime

import pendulum

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator
try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

with DAG(
    dag_id={{py .DagID}},
    schedule={{py .Cron}},
    start_date=pendulum.datetime(2026, 1, 1, tz={{py .TZ}}),
    catchup=False,
    max_active_runs=1,
    tags=[{{range $i, $t := .Tags}}{{if $i}}, {{end}}{{py $t}}{{end}}],
    doc_md={{py .Doc}},
    default_args={
        "retries": {{.O.Retries}},
        "retry_delay": datetime.timedelta(seconds={{.O.RetryDelaySeconds}}),
    },
) as dag:
{{- range .Tasks}}
    BashOperator(
        task_id={{py .ID}},
        bash_command={{py .Command}},
    )
{{- end}}
`))

func render(d dagData) ([]byte, error) {
	var b bytes.Buffer
	if err := dagTmpl.Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
