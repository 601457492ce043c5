package testenv

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// SparkRequirements are the pinned pip requirements of the Spark venv:
// pyspark 3.5 (which carries Spark's own jars and finds its SPARK_HOME
// inside the package) and the py4j it pins. Spark 3.5 is the newest line
// Iceberg 1.10 ships a runtime for (iceberg-spark-runtime-3.5_2.12).
var SparkRequirements = []string{
	"pyspark==3.5.7",
	"py4j==0.10.9.7",
}

// SparkCatalogName is the Spark catalog RunSpark configures when
// SparkConfig.Catalog is empty.
const SparkCatalogName = "lake"

// sparkLogTail is how many lines of Spark's stderr RunSpark errors include.
const sparkLogTail = 60

//go:embed spark/pom.xml
var sparkPom []byte

// SparkJars makes sure the jars Spark needs for an Iceberg REST catalog on
// S3 — org.apache.iceberg:iceberg-spark-runtime-3.5_2.12 and
// org.apache.iceberg:iceberg-aws-bundle, both IcebergRESTVersion, both
// self-contained — are in CacheDir()/iceberg-spark-<IcebergRESTVersion>/libs
// and returns that directory. The first call runs Maven on the embedded
// spark/pom.xml (see IcebergRESTJars for the locking and the marker); later
// calls return at once.
func SparkJars(ctx context.Context) (jarsDir string, err error) {
	return mavenJars{dir: "iceberg-spark-" + IcebergRESTVersion, what: "Iceberg " + IcebergRESTVersion + " Spark runtime jars",
		pom: sparkPom, key: IcebergRESTVersion,
		args: []string{"-Diceberg.version=" + IcebergRESTVersion, "-DexcludeTransitive=true"},
		expect: []string{"iceberg-spark-runtime-3.5_2.12-" + IcebergRESTVersion + ".jar",
			"iceberg-aws-bundle-" + IcebergRESTVersion + ".jar"}}.fetch(ctx)
}

// SparkPython returns the python of the cached virtualenv holding pyspark
// (SparkRequirements; CacheDir()/venv-spark, built by PythonVenv on first
// use: a 300 MB download) and the directory of the Iceberg jars (SparkJars).
// Both are cached, so only the first call in a cache is slow.
func SparkPython(ctx context.Context) (python, jarsDir string, err error) {
	if python, err = PythonVenv(ctx, "spark", SparkRequirements...); err != nil {
		return "", "", err
	}
	if jarsDir, err = SparkJars(ctx); err != nil {
		return "", "", err
	}
	return python, jarsDir, nil
}

// SparkConfig says which Iceberg REST catalog a RunSpark script sees.
type SparkConfig struct {
	// CatalogURI is the REST catalog's base URL (RESTCatalog.URI()).
	CatalogURI string
	// Catalog names the Spark catalog (spark.sql.catalog.<Catalog>), which is
	// also the session's default catalog; "" means SparkCatalogName.
	Catalog string
	// S3 is the object store of the catalog's warehouse: its
	// ClientProperties become properties of the Spark catalog. The zero
	// value is for a catalog whose warehouse is local (StartRESTCatalog).
	S3 RESTS3Options
	// Dir holds the runs' files: each run's script and Spark local
	// directory (Dir/run-*/), and Spark's stderr (Dir/spark.log, appended
	// to). It is created if needed; "" means a temporary directory removed
	// after the run.
	Dir string
	// Conf holds more Spark properties; they are set last, so they override
	// RunSpark's own.
	Conf map[string]string
}

// sparkDriver is the Python program RunSpark runs: argv[1] is a JSON file
// {"conf": {...}}, argv[2] the user's script. It builds the session, runs
// the script with `spark` bound, and stops the session. Descriptor 1 is
// pointed at stderr before the JVM starts (py4j launches it as a child that
// inherits it), so only the script's prints reach the real stdout.
const sparkDriver = `import json, os, sys, traceback
out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = out
with open(sys.argv[1]) as f:
    cfg = json.load(f)
from pyspark.sql import SparkSession
builder = SparkSession.builder.appName("citybrain-testenv")
for k, v in cfg["conf"].items():
    builder = builder.config(k, v)
spark = builder.getOrCreate()
spark.sparkContext.setLogLevel("WARN")
code = 0
try:
    with open(sys.argv[2]) as f:
        src = f.read()
    exec(compile(src, sys.argv[2], "exec"), {"__name__": "__main__", "spark": spark})
except SystemExit as e:
    code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
except BaseException:
    traceback.print_exc()
    code = 1
finally:
    out.flush()
    spark.stop()
sys.exit(code)
`

// sparkConf returns the Spark properties of a run: a local[2] master with a
// 1 GB driver on loopback only, no UI, the Iceberg jars on the driver's
// classpath, the Iceberg SQL extensions, and the REST catalog.
func (c SparkConfig) sparkConf(jarsDir, localDir string) (map[string]string, error) {
	jars, err := filepath.Glob(filepath.Join(jarsDir, "*.jar"))
	if err != nil || len(jars) == 0 {
		return nil, fmt.Errorf("testenv: no jars in %s (%v)", jarsDir, err)
	}
	name := c.Catalog
	if name == "" {
		name = SparkCatalogName
	}
	cat := "spark.sql.catalog." + name
	conf := map[string]string{
		"spark.master":                  "local[2]",
		"spark.driver.memory":           "1g",
		"spark.driver.host":             "127.0.0.1",
		"spark.driver.bindAddress":      "127.0.0.1",
		"spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true -Djava.io.tmpdir=\"" + localDir + "\"",
		"spark.ui.enabled":              "false",
		"spark.ui.showConsoleProgress":  "false",
		"spark.sql.shuffle.partitions":  "2",
		"spark.default.parallelism":     "2",
		"spark.sql.warehouse.dir":       filepath.Join(localDir, "spark-warehouse"),
		"spark.jars":                    strings.Join(jars, ","),
		"spark.sql.extensions":          "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
		"spark.sql.defaultCatalog":      name,
		cat:                             "org.apache.iceberg.spark.SparkCatalog",
		cat + ".type":                   "rest",
		cat + ".uri":                    c.CatalogURI,
	}
	if c.S3 != (RESTS3Options{}) {
		if err := c.S3.Validate(); err != nil {
			return nil, err
		}
		for k, v := range c.S3.ClientProperties() {
			conf[cat+"."+k] = v
		}
	}
	for k, v := range c.Conf {
		conf[k] = v
	}
	return conf, nil
}

// RunSpark runs a PySpark script in a fresh Spark driver (one JVM per call,
// local[2], 1 GB) whose session has the Iceberg REST catalog of cfg as its
// default catalog, and returns what the script printed on stdout (by
// convention JSON). The script runs as __main__ with the global `spark`
// bound to the SparkSession; RunSpark stops the session afterwards. Spark's
// own output goes to cfg.Dir/spark.log, never to the returned stdout.
//
// Nothing is downloaded at run time: pyspark comes from the cached venv and
// the Iceberg jars from the cache (SparkPython), passed with spark.jars.
// Everything listens on 127.0.0.1 only (SPARK_LOCAL_IP, spark.driver.host);
// SPARK_*, PYSPARK_* and AWS_* variables of the caller are not passed on.
//
// A script that raises or exits non-zero makes an error that holds the last
// 60 lines of Spark's stderr (the Python traceback among them); stdout is
// returned with it. Cancelling ctx kills the driver's process group.
// java (17+) must be on PATH.
func RunSpark(ctx context.Context, cfg SparkConfig, script string) (stdout string, err error) {
	if cfg.CatalogURI == "" {
		return "", errors.New("testenv: SparkConfig.CatalogURI is empty")
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("testenv: java (17+) is needed for Spark (%v); run make test-deps (apt-get install default-jdk-headless)", err)
	}
	python, jarsDir, err := SparkPython(ctx)
	if err != nil {
		return "", err
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "citybrain-spark-"); err != nil {
			return "", fmt.Errorf("testenv: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	run, err := os.MkdirTemp(dir, "run-")
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	localDir := filepath.Join(run, "tmp")
	if err := os.MkdirAll(localDir, 0o755); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	conf, err := cfg.sparkConf(jarsDir, localDir)
	if err != nil {
		return "", err
	}
	confJSON, err := json.Marshal(map[string]any{"conf": conf})
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	files := map[string][]byte{"driver.py": []byte(sparkDriver), "conf.json": confJSON, "script.py": []byte(script)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(run, name), b, 0o600); err != nil {
			return "", fmt.Errorf("testenv: %w", err)
		}
	}

	logPath := filepath.Join(dir, "spark.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== testenv: RunSpark in %s at %s\n", run, time.Now().Format(time.RFC3339))

	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPARK_") && !strings.HasPrefix(kv, "PYSPARK_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"SPARK_LOCAL_IP=127.0.0.1",
		"SPARK_LOCAL_HOSTNAME=localhost",
		"SPARK_LOCAL_DIRS="+localDir,
		"TMPDIR="+localDir,
		"PYSPARK_PYTHON="+python,
		"JAVA_HOME="+javaHome(java),
		"PYTHONUNBUFFERED=1",
	)
	var out bytes.Buffer
	stderrTail := &tailBuffer{max: 256 << 10}
	cmd := exec.CommandContext(ctx, python, filepath.Join(run, "driver.py"), filepath.Join(run, "conf.json"), filepath.Join(run, "script.py"))
	cmd.Dir = run
	cmd.Env = env
	cmd.Stdout = &out
	cmd.Stderr = io.MultiWriter(logf, stderrTail)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	if cmd.Process != nil {
		// The JVM is in the group too; it exits with the driver, but make sure.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return out.String(), fmt.Errorf("testenv: Spark script failed: %w; %s (tail):\n%s", err, logPath, tailOfString(stderrTail.String(), sparkLogTail))
	}
	return out.String(), nil
}

// javaHome returns the JDK home of a java binary (…/bin/java, symlinks
// resolved), so that pyspark's launcher uses the same java as the caller.
func javaHome(java string) string {
	if real, err := filepath.EvalSymlinks(java); err == nil {
		java = real
	}
	return filepath.Dir(filepath.Dir(java))
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
