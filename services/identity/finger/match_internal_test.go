package finger

import "testing"

// TestSureScoreAboveThresholds: the matcher stops searching once an
// alignment reaches sureScore, which must stay clear above every
// calibrated threshold (else a recalibration could let that shortcut
// change decisions).
func TestSureScoreAboveThresholds(t *testing.T) {
	for _, c := range calibration {
		if c.threshold*1.2 >= sureScore {
			t.Fatalf("threshold %.3f for FMR %g is within 20%% of sureScore %.2f", c.threshold, c.fmr, sureScore)
		}
	}
}
