// Package synth generates synthetic fingers and impressions of them as
// ISO/IEC 19794-2 and ANSI INCITS 378 records, seeded and deterministic,
// for measuring the matcher (finger.Score) without real fingerprints.
//
// A finger is a set of minutiae spread over an elliptic finger area with
// a minimum spacing, whose directions follow a ridge orientation field
// of an arch, loop or whorl pattern (Sherlock-Monro zero-pole model) so
// that neighbouring minutiae have similar directions, as on real
// fingers. An impression of it applies, in order: a smooth non-linear
// distortion of the skin (a random low-frequency displacement field and
// an anisotropic stretch), a rotation of up to ±30 degrees and a
// translation, position and angle noise, the loss of 10-25% of the
// minutiae and the addition of 10-25% spurious ones (along the ridge
// flow), type confusion (ending <-> bifurcation), and the crop of the
// sensor window.
package synth

import (
	"math"
	"math/rand/v2"

	"github.com/uias/uias/services/identity/finger"
)

// Params describe the set.
type Params struct {
	Seed             uint64
	MaxRotationDeg   float64 // ± rotation of an impression
	MaxTranslation   float64 // ± pixels in x and y
	DistortionPx     float64 // amplitude of the non-linear displacement
	PositionNoisePx  float64 // standard deviation
	AngleNoiseDeg    float64 // standard deviation
	MissingMin       float64 // share of minutiae lost, drawn in [min, max]
	MissingMax       float64
	SpuriousMin      float64 // spurious minutiae added, share of the finger's
	SpuriousMax      float64
	TypeFlip         float64 // chance an ending reads as a bifurcation or back
	Width, Height    int     // sensor image, 500 dpi pixels
	MinMinutiae      int     // per finger
	MaxMinutiae      int
	MinSpacing       float64 // pixels between a finger's minutiae
	FingerHalfWidth  float64 // finger area: ellipse semi-axes
	FingerHalfHeight float64
}

// Default is the set the benchmark measures (docs/benchmarks.md).
func Default(seed uint64) Params {
	return Params{
		Seed: seed, MaxRotationDeg: 30, MaxTranslation: 40, DistortionPx: 7,
		PositionNoisePx: 2.5, AngleNoiseDeg: 6, MissingMin: 0.10, MissingMax: 0.25,
		SpuriousMin: 0.10, SpuriousMax: 0.25, TypeFlip: 0.15,
		Width: 400, Height: 500, MinMinutiae: 40, MaxMinutiae: 70, MinSpacing: 16,
		FingerHalfWidth: 165, FingerHalfHeight: 215,
	}
}

type point struct{ x, y, theta float64 }

// Finger is one synthetic finger (its "true" minutiae).
type Finger struct {
	p      Params
	id     int
	pts    []point
	types  []uint8
	cx, cy float64
	field  func(x, y float64) float64
}

// NewFinger makes finger id of the set (the same id gives the same finger).
func NewFinger(p Params, id int) *Finger {
	rng := rand.New(rand.NewPCG(p.Seed, uint64(id)*2+1))
	f := &Finger{p: p, id: id, cx: float64(p.Width) / 2, cy: float64(p.Height) / 2}
	f.field = orientationField(rng, f.cx, f.cy, p)
	n := p.MinMinutiae + rng.IntN(p.MaxMinutiae-p.MinMinutiae+1)
	for tries := 0; len(f.pts) < n && tries < n*200; tries++ {
		// Uniform in the ellipse.
		u, v := 2*rng.Float64()-1, 2*rng.Float64()-1
		if u*u+v*v > 1 {
			continue
		}
		x, y := f.cx+u*p.FingerHalfWidth, f.cy+v*p.FingerHalfHeight
		ok := true
		for _, q := range f.pts {
			if (q.x-x)*(q.x-x)+(q.y-y)*(q.y-y) < p.MinSpacing*p.MinSpacing {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		theta := f.field(x, y)
		if rng.IntN(2) == 1 {
			theta += math.Pi
		}
		theta += rng.NormFloat64() * 5 * math.Pi / 180
		f.pts = append(f.pts, point{x, y, theta})
		f.types = append(f.types, uint8(1+rng.IntN(2)))
	}
	return f
}

// orientationField returns the ridge orientation (radians, mod π) at a
// point: an arch, a loop (one core, one delta) or a whorl (two cores, two
// deltas), placed and turned at random.
func orientationField(rng *rand.Rand, cx, cy float64, p Params) func(x, y float64) float64 {
	base := (rng.Float64() - 0.5) * 0.6
	type sing struct {
		x, y, sign float64
	}
	var s []sing
	jit := func(s float64) float64 { return (rng.Float64() - 0.5) * s }
	switch k := rng.IntN(10); {
	case k < 1: // arch: no singular points, a gentle wave
		a, w := 0.5+rng.Float64()*0.4, 1/(p.FingerHalfWidth*(1+rng.Float64()))
		return func(x, y float64) float64 {
			return base + a*math.Sin((x-cx)*w)*math.Exp(-(y-cy+p.FingerHalfHeight/2)*(y-cy+p.FingerHalfHeight/2)/(2*p.FingerHalfHeight*p.FingerHalfHeight))
		}
	case k < 7: // loop
		coreX, coreY := cx+jit(120), cy-60+jit(80)
		dx := 90 + rng.Float64()*60
		if rng.IntN(2) == 0 {
			dx = -dx
		}
		s = []sing{{coreX, coreY, 1}, {coreX + dx, coreY + 140 + jit(60), -1}}
	default: // whorl
		coreX, coreY := cx+jit(80), cy-40+jit(60)
		s = []sing{{coreX, coreY - 20, 1}, {coreX, coreY + 20, 1},
			{coreX - 130 - jit(40), coreY + 150, -1}, {coreX + 130 + jit(40), coreY + 150, -1}}
	}
	return func(x, y float64) float64 {
		o := base
		for _, q := range s {
			o += q.sign * 0.5 * math.Atan2(y-q.y, x-q.x)
		}
		return o
	}
}

// Impression makes impression number imp of the finger as a record: ISO
// for even impressions, ANSI for odd ones.
func (f *Finger) Impression(imp int) []byte {
	p := f.p
	rng := rand.New(rand.NewPCG(p.Seed^0x9e3779b97f4a7c15, uint64(f.id)<<8|uint64(imp)))
	rot := (2*rng.Float64() - 1) * p.MaxRotationDeg * math.Pi / 180
	tx, ty := (2*rng.Float64()-1)*p.MaxTranslation, (2*rng.Float64()-1)*p.MaxTranslation
	// Non-linear distortion: three random low-frequency waves per axis
	// whose amplitudes add up to DistortionPx, and a stretch of up to 4%.
	type wave struct{ kx, ky, ph, amp float64 }
	var wx, wy [3]wave
	for i := range 3 {
		for _, w := range []*wave{&wx[i], &wy[i]} {
			l := 250 + rng.Float64()*450
			a := rng.Float64() * 2 * math.Pi
			w.kx, w.ky = 2*math.Pi/l*math.Cos(a), 2*math.Pi/l*math.Sin(a)
			w.ph = rng.Float64() * 2 * math.Pi
			w.amp = p.DistortionPx / 3 * (0.5 + rng.Float64())
		}
	}
	stx, sty := 1+(rng.Float64()-0.5)*0.08, 1+(rng.Float64()-0.5)*0.08
	sinR, cosR := math.Sincos(rot)
	place := func(x, y float64) (float64, float64) {
		dx, dy := 0.0, 0.0
		for i := range 3 {
			dx += wx[i].amp * math.Sin(wx[i].kx*x+wx[i].ky*y+wx[i].ph)
			dy += wy[i].amp * math.Sin(wy[i].kx*x+wy[i].ky*y+wy[i].ph)
		}
		x, y = f.cx+(x+dx-f.cx)*stx, f.cy+(y+dy-f.cy)*sty
		rx, ry := x-f.cx, y-f.cy
		return f.cx + cosR*rx - sinR*ry + tx, f.cy + sinR*rx + cosR*ry + ty
	}
	missing := p.MissingMin + rng.Float64()*(p.MissingMax-p.MissingMin)
	spurious := p.SpuriousMin + rng.Float64()*(p.SpuriousMax-p.SpuriousMin)
	var out []finger.Minutia
	add := func(x, y, theta float64, typ uint8) {
		x += rng.NormFloat64() * p.PositionNoisePx
		y += rng.NormFloat64() * p.PositionNoisePx
		theta += rot + rng.NormFloat64()*p.AngleNoiseDeg*math.Pi/180
		if x < 0 || y < 0 || x >= float64(p.Width) || y >= float64(p.Height) {
			return // outside the sensor
		}
		if rng.Float64() < p.TypeFlip {
			typ = 3 - typ
		}
		out = append(out, finger.Minutia{X: uint16(x), Y: uint16(y), Type: typ,
			Quality: uint8(40 + rng.IntN(61)), Angle: angleUnits(theta, imp%2 == 1)})
	}
	for i, q := range f.pts {
		if rng.Float64() < missing {
			continue
		}
		x, y := place(q.x, q.y)
		add(x, y, q.theta, f.types[i])
	}
	nsp := int(math.Round(spurious * float64(len(f.pts))))
	for range nsp {
		// Spurious minutiae appear inside the finger area, along the flow.
		u, v := 2*rng.Float64()-1, 2*rng.Float64()-1
		if u*u+v*v > 1 {
			u, v = u/2, v/2
		}
		x0, y0 := f.cx+u*p.FingerHalfWidth, f.cy+v*p.FingerHalfHeight
		theta := f.field(x0, y0)
		if rng.IntN(2) == 1 {
			theta += math.Pi
		}
		x, y := place(x0, y0)
		add(x, y, theta, uint8(1+rng.IntN(2)))
	}
	// Records list minutiae in no meaningful order: shuffle.
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) > 255 {
		out = out[:255]
	}
	r := &finger.Record{Format: finger.ISO, Width: uint16(p.Width), Height: uint16(p.Height),
		XRes: 197, YRes: 197, Views: []finger.View{{Position: 0, Quality: uint8(60 + rng.IntN(41)), Minutiae: out}}}
	if imp%2 == 1 {
		r.Format = finger.ANSI
	}
	b, err := finger.Encode(r)
	if err != nil {
		panic(err) // the generator makes valid records only
	}
	return b
}

func angleUnits(theta float64, ansi bool) uint8 {
	theta = math.Mod(theta, 2*math.Pi)
	if theta < 0 {
		theta += 2 * math.Pi
	}
	if ansi {
		return uint8(int(math.Round(theta*90/math.Pi)) % 180)
	}
	return uint8(int(math.Round(theta*128/math.Pi)) % 256)
}
