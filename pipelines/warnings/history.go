package warnings

import (
	"database/sql"
	"time"
)

// ScanTransitions reads marts.warnings rows (any column order; unknown
// columns ignored) into transitions.
func ScanTransitions(rows *sql.Rows) ([]Transition, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []Transition
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var t Transition
		for i, c := range cols {
			v := vals[i]
			tm, _ := v.(time.Time)
			switch c {
			case "warning_id":
				t.WarningID = str(v)
			case "seq":
				t.Seq = int64(num(v))
			case "kind":
				t.Kind = str(v)
			case "rule":
				t.Rule = str(v)
			case "metric":
				t.Metric = str(v)
			case "subject_type":
				t.SubjectType = str(v)
			case "subject_id":
				t.SubjectID = str(v)
			case "subject_name_zh":
				t.SubjectNameZh = str(v)
			case "subject_name_en":
				t.SubjectNameEn = str(v)
			case "street_code":
				t.StreetCode = str(v)
			case "level":
				t.Level = str(v)
			case "previous_level":
				t.PreviousLevel = str(v)
			case "state":
				t.State = str(v)
			case "predicted":
				t.Predicted, _ = v.(bool)
			case "horizon_min":
				t.HorizonMin = int(num(v))
			case "observed_value":
				t.ObservedValue = numPtr(v)
			case "forecast_value":
				t.ForecastValue = numPtr(v)
			case "threshold":
				t.Threshold = numPtr(v)
			case "unit":
				t.Unit = str(v)
			case "people_count":
				if p := numPtr(v); p != nil {
					n := int64(*p)
					t.PeopleCount = &n
				}
			case "baseline_value":
				t.BaselineValue = numPtr(v)
			case "message_zh":
				t.MessageZh = str(v)
			case "message_en":
				t.MessageEn = str(v)
			case "responsible_unit":
				t.ResponsibleUnit = str(v)
			case "event_time":
				t.EventTime = tm.UTC()
			case "transition_at":
				t.TransitionAt = tm.UTC()
			case "raised_at":
				t.RaisedAt = tm.UTC()
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
