package synth

import (
	"crypto/sha256"
	"fmt"
	"math"
	"testing"

	"github.com/uias/uias/services/identity/finger"
)

// TestDeterministic: the same seed and finger give the same records; the
// records parse in both formats.
func TestDeterministic(t *testing.T) {
	p := Default(7)
	sum := func() string {
		h := sha256.New()
		for i := range 5 {
			f := NewFinger(p, i)
			for k := range 4 {
				h.Write(f.Impression(k))
			}
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	if a, b := sum(), sum(); a != b {
		t.Fatalf("two runs differ: %s, %s", a, b)
	}
	f := NewFinger(p, 3)
	if string(f.Impression(0)) == string(f.Impression(2)) {
		t.Fatal("two impressions are identical")
	}
	for k := range 2 {
		r, err := finger.Parse(f.Impression(k))
		if err != nil {
			t.Fatal(err)
		}
		if want := []finger.Format{finger.ISO, finger.ANSI}[k]; r.Format != want {
			t.Fatalf("impression %d is %v, want %v", k, r.Format, want)
		}
	}
}

// TestAccuracy: on a small set of the benchmark's kind (100 fingers x 8
// impressions: 2,800 genuine and 4,950 impostor comparisons) the equal
// error rate stays under 1%. The full measurement (1,000 fingers) is
// `uias bench --only finger`.
func TestAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("accuracy on 100 fingers takes a few seconds")
	}
	s, err := Collect(Default(11), 100, 8)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Rates()
	t.Logf("EER %.3f%%, FNMR at FMR 1e-3 %.3f%% (%d genuine, %d impostor)", 100*r.EER, 100*r.FNMRAt1e3, r.GenuineCount, r.ImpostorCount)
	if r.EER > 0.01 {
		t.Fatalf("EER %.3f%%, want at most 1%%", 100*r.EER)
	}
	// The calibrated threshold for 1e-3 keeps this set's FMR near it.
	th, err := finger.Threshold(1e-3)
	if err != nil {
		t.Fatal(err)
	}
	over := 0
	for _, x := range s.Impostor {
		if x >= th {
			over++
		}
	}
	if fmr := float64(over) / float64(len(s.Impostor)); fmr > 5e-3 {
		t.Fatalf("FMR %.4f at the threshold calibrated for 1e-3", fmr)
	}
}

// TestRotation: impressions turned up to 30 degrees either way (and
// shifted) still match their finger; the score does not depend on the
// turn.
func TestRotation(t *testing.T) {
	for _, deg := range []float64{-30, -15, 0, 15, 30} {
		p := Default(5)
		p.MaxRotationDeg = 0
		f := NewFinger(p, 1)
		a := prepare(t, f.Impression(0))
		b := prepare(t, rotate(t, f.Impression(1), deg))
		th, _ := finger.Threshold(1e-4)
		if s := finger.Score(a, b); s < th {
			t.Fatalf("turned %v degrees: score %.3f below the 1e-4 threshold %.3f", deg, s, th)
		}
	}
}

func prepare(t *testing.T, b []byte) *finger.Template {
	t.Helper()
	r, err := finger.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := finger.Prepare(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// rotate turns a record's minutiae about the image centre, dropping
// those that leave the image.
func rotate(t *testing.T, b []byte, deg float64) []byte {
	r, err := finger.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	sn, cs := math.Sincos(deg * math.Pi / 180)
	cx, cy := float64(r.Width)/2, float64(r.Height)/2
	var out []finger.Minutia
	for _, m := range r.Views[0].Minutiae {
		dx, dy := float64(m.X)-cx, float64(m.Y)-cy
		x, y := cx+cs*dx-sn*dy, cy+sn*dx+cs*dy
		if x < 0 || y < 0 || x >= float64(r.Width) || y >= float64(r.Height) {
			continue
		}
		m.X, m.Y = uint16(x), uint16(y)
		m.Angle = angleUnits(r.AngleRadians(m.Angle)+deg*math.Pi/180, r.Format == finger.ANSI)
		out = append(out, m)
	}
	r.Views[0].Minutiae = out
	nb, err := finger.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}
