package finger

import (
	"fmt"
	"math"
)

// calibration maps false-match rates to the Score thresholds that reach
// them: the impostor score distribution of a synthetic set held apart from
// the one the benchmark reports on (synth.Default(CalibrationSeed),
// CalibrationFingers fingers; `go test ./finger/synth -run TestCalibrate
// -calibrate` rewrites calibration_table.go).
//
// Thresholds between the points are interpolated in log(FMR).

// MinFMR and MaxFMR bound the false-match rates a threshold can be set
// for: those the calibration measured.
func fmrBounds() (lo, hi float64) {
	return calibration[len(calibration)-1].fmr, calibration[0].fmr
}

type calPoint struct {
	fmr       float64
	threshold float64
}

// Threshold is the Score threshold for a false-match rate per comparison.
func Threshold(fmr float64) (float64, error) {
	lo, hi := fmrBounds()
	if !(fmr >= lo && fmr <= hi) {
		return 0, fmt.Errorf("false-match rate %g is outside the calibrated range %g to %g", fmr, lo, hi)
	}
	for i := 1; i < len(calibration); i++ {
		a, b := calibration[i-1], calibration[i]
		if fmr <= a.fmr && fmr >= b.fmr {
			f := (math.Log(a.fmr) - math.Log(fmr)) / (math.Log(a.fmr) - math.Log(b.fmr))
			return a.threshold + f*(b.threshold-a.threshold), nil
		}
	}
	return calibration[0].threshold, nil
}

// Matcher decides whether a probe matches any of a person's enrolled
// fingers at a target false-match rate for the whole decision: with n
// fingers enrolled and v probe views there are n*v comparisons, each
// held to targetFMR/(n*v), so that enrolling more fingers does not make
// a false match more likely.
type Matcher struct {
	targetFMR float64
}

// NewMatcher makes a matcher for a target false-match rate (for example
// 1e-4: one in ten thousand).
func NewMatcher(targetFMR float64) (*Matcher, error) {
	if _, err := Threshold(targetFMR); err != nil {
		return nil, err
	}
	return &Matcher{targetFMR: targetFMR}, nil
}

// TargetFMR is the false-match rate the matcher was made for.
func (m *Matcher) TargetFMR() float64 { return m.targetFMR }

// Match compares every probe template with every gallery template and
// reports whether the best score reaches the threshold for that many
// comparisons.
func (m *Matcher) Match(probes, gallery []*Template) (matched bool, best float64) {
	n := len(probes) * len(gallery)
	if n == 0 {
		return false, 0
	}
	lo, _ := fmrBounds()
	t, err := Threshold(max(lo, m.targetFMR/float64(n)))
	if err != nil {
		return false, 0
	}
	for _, p := range probes {
		for _, g := range gallery {
			best = max(best, Score(p, g))
		}
	}
	return best >= t, best
}
