package forecast

import (
	"errors"
	"math"
	"time"
)

// Row is one horizon of an evaluation: the same origins scored for the
// historical average (HA), the reference model and this forecaster.
type Row struct {
	Horizon    time.Duration `json:"-"`
	HorizonMin int           `json:"horizon_min"`
	N          int           `json:"n"`
	HAMAE      float64       `json:"ha_mae"`
	HARMSE     float64       `json:"ha_rmse"`
	RefMAE     float64       `json:"ref_mae"`
	RefRMSE    float64       `json:"ref_rmse"`
	MAE        float64       `json:"mae"`
	RMSE       float64       `json:"rmse"`
	VsRef      float64       `json:"rmse_vs_ref"` // RMSE / reference RMSE (goal ≤ 0.85)
	VsHA       float64       `json:"rmse_vs_ha"`  // RMSE / HA RMSE
	Coverage   float64       `json:"coverage_80"` // share of outcomes inside the 80 % interval (goal 0.75–0.85)
	Settings   Settings      `json:"settings"`
	TestFrom   time.Time     `json:"test_from"`
	TrainFrom  time.Time     `json:"train_from"`
}

// Evaluate fits on the first split of the series' intervals and scores
// every origin of the rest at each horizon (in intervals).
func Evaluate(s Series, cal Calendar, split float64, horizons []int) ([]Row, *Model, error) {
	if split <= 0 || split >= 1 {
		return nil, nil, errors.New("split must be between 0 and 1 (e.g. 0.75)")
	}
	trainEnd := int(float64(len(s.V)) * split)
	m, err := Fit(s, cal, trainEnd, horizons, nil)
	if err != nil {
		return nil, nil, err
	}
	ref := NewReference(s, trainEnd)
	var out []Row
	for _, h := range horizons {
		var eHA, eRef, e []float64
		in := 0
		for i := trainEnd; i+h < len(s.V); i++ {
			y := s.V[i+h]
			if math.IsNaN(y) {
				continue
			}
			p, lo, hi, ok := m.Forecast(i, h)
			r, rok := ref.Forecast(i, h)
			ha := ref.HA(i + h)
			if !ok || !rok || math.IsNaN(ha) {
				continue
			}
			e, eRef, eHA = append(e, p-y), append(eRef, r-y), append(eHA, ha-y)
			if y >= lo && y <= hi {
				in++
			}
		}
		row := Row{Horizon: time.Duration(h) * s.Step, HorizonMin: int((time.Duration(h) * s.Step).Minutes()), N: len(e), Settings: m.Settings, TestFrom: s.At(trainEnd), TrainFrom: s.Start}
		if len(e) > 0 {
			row.MAE, row.RMSE = mae(e), rms(e)
			row.RefMAE, row.RefRMSE = mae(eRef), rms(eRef)
			row.HAMAE, row.HARMSE = mae(eHA), rms(eHA)
			row.VsRef, row.VsHA = row.RMSE/row.RefRMSE, row.RMSE/row.HARMSE
			row.Coverage = float64(in) / float64(len(e))
		}
		out = append(out, row)
	}
	return out, m, nil
}

func mae(e []float64) float64 {
	s := 0.0
	for _, x := range e {
		s += math.Abs(x)
	}
	return s / float64(len(e))
}
