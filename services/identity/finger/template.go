package finger

import (
	"errors"
	"math"
)

// The matcher works at 500 dpi (196.85 pixels per centimetre): a record
// at another resolution is scaled to it.
const refRes = 196.85

// Angles are binary: a uint16 holds a turn (65536 units), so that
// differences wrap by themselves.
const turn = 65536

func toBAM(rad float64) uint16 {
	return uint16(int64(math.Round(rad*turn/(2*math.Pi))) & (turn - 1))
}

func bamRad(a uint16) float64 { return float64(a) * 2 * math.Pi / turn }

// adiff is the absolute difference of two binary angles (0 to half a turn).
func adiff(a, b uint16) uint16 {
	d := int16(a - b)
	if d < 0 {
		return uint16(-int32(d))
	}
	return uint16(d)
}

// Template is one finger view prepared for matching: minutiae in 500 dpi
// units, sorted by x, and, for each minutia, the rotation- and
// translation-invariant features of the pairs it forms with its nearest
// neighbours, indexed by those features.
type Template struct {
	n     int
	x, y  []float32
	theta []uint16
	// minX.. bound the minutiae (the area the finger covered).
	minX, minY, maxX, maxY float32

	pairs []pair
	// bins[k]..bins[k+1] are the indexes into byBin of the pairs whose
	// features fall into bin k.
	bins  [nBins + 1]int16
	byBin []int16
}

// pair is the directed pair i -> j: distance, the direction of the
// segment (absolute, for the alignment) and both minutiae's directions
// relative to the segment (invariant to rotation and translation).
type pair struct {
	d      float32
	i, j   uint8
	phi    uint16
	a1, a2 uint16
}

// Neighbours per minutia whose pairs are indexed.
const neighbours = 6

// Pair index: buckets by distance (binD pixels) and the first minutia's
// relative angle (nBinA buckets); a probe pair visits the buckets its
// tolerances cover and checks the rest exactly.
const (
	binD      = 8.0
	maxD      = 160.0
	nBinD     = int(maxD / binD)
	nBinA     = 16
	binAShift = 12 // 65536 >> 12 = 16 buckets
	nBins     = nBinD * nBinA
)

// ErrTooFewMinutiae is returned for a view too sparse to compare.
var ErrTooFewMinutiae = errors.New("finger view has fewer than 4 minutiae")

// MinMinutiae is the fewest minutiae a view needs to be compared.
const MinMinutiae = 4

type minu struct {
	x, y float32
	t    uint16
}

// Prepare makes the template of view v of record r.
func Prepare(r *Record, v int) (*Template, error) {
	view := &r.Views[v]
	n := len(view.Minutiae)
	if n < MinMinutiae {
		return nil, ErrTooFewMinutiae
	}
	k := min(neighbours, n-1)
	t := &Template{n: n}
	buf := make([]float32, 2*n)
	t.x, t.y = buf[:n:n], buf[n:]
	t.theta = make([]uint16, n)
	t.pairs = make([]pair, 0, n*k)
	t.byBin = make([]int16, 0, n*k)
	sx, sy := float32(refRes/float64(r.XRes)), float32(refRes/float64(r.YRes))
	var ms [255]minu
	for i, m := range view.Minutiae {
		ms[i] = minu{float32(m.X) * sx, float32(m.Y) * sy, toBAM(r.AngleRadians(m.Angle))}
	}
	// Insertion sort by x (records hold at most 255).
	for i := 1; i < n; i++ {
		for j := i; j > 0 && ms[j-1].x > ms[j].x; j-- {
			ms[j-1], ms[j] = ms[j], ms[j-1]
		}
	}
	t.minX, t.minY = math.MaxFloat32, math.MaxFloat32
	t.maxX, t.maxY = -math.MaxFloat32, -math.MaxFloat32
	for i := range n {
		t.x[i], t.y[i], t.theta[i] = ms[i].x, ms[i].y, ms[i].t
		t.minY, t.maxY = min(t.minY, ms[i].y), max(t.maxY, ms[i].y)
	}
	t.minX, t.maxX = t.x[0], t.x[n-1]
	t.buildPairs(k)
	return t, nil
}

// Len is the number of minutiae.
func (t *Template) Len() int { return t.n }

func (t *Template) buildPairs(k int) {
	n := t.n
	var nd [neighbours]float32
	var ni [neighbours]uint8
	for i := range n {
		// The k nearest others: walk out from i in x order while the
		// x distance alone can still beat the k-th nearest so far.
		cnt := 0
		xi, yi := t.x[i], t.y[i]
		consider := func(j int) bool {
			dx := t.x[j] - xi
			if cnt == k && dx*dx >= nd[k-1] {
				return false
			}
			dy := t.y[j] - yi
			d2 := dx*dx + dy*dy
			if cnt == k && d2 >= nd[k-1] {
				return true
			}
			p := cnt
			if cnt < k {
				cnt++
			} else {
				p = k - 1
			}
			for p > 0 && nd[p-1] > d2 {
				nd[p], ni[p] = nd[p-1], ni[p-1]
				p--
			}
			nd[p], ni[p] = d2, uint8(j)
			return true
		}
		lo, hi := i-1, i+1
		for lo >= 0 || hi < n {
			if hi < n && !consider(hi) {
				hi = n
			} else {
				hi++
			}
			if lo >= 0 && !consider(lo) {
				lo = -1
			} else {
				lo--
			}
		}
		for c := range cnt {
			j := int(ni[c])
			d := float32(math.Sqrt(float64(nd[c])))
			if d >= maxD || d < 1 {
				continue
			}
			phi := atan2(t.y[j]-yi, t.x[j]-xi)
			t.pairs = append(t.pairs, pair{i: uint8(i), j: uint8(j), d: d, phi: phi,
				a1: t.theta[i] - phi, a2: t.theta[j] - phi})
		}
	}
	// Counting sort of the pairs into their bins.
	for idx := range t.pairs {
		t.bins[binOf(&t.pairs[idx])+1]++
	}
	for b := 1; b <= nBins; b++ {
		t.bins[b] += t.bins[b-1]
	}
	t.byBin = t.byBin[:len(t.pairs)]
	var fill [nBins]int16
	for idx := range t.pairs {
		b := binOf(&t.pairs[idx])
		t.byBin[t.bins[b]+fill[b]] = int16(idx)
		fill[b]++
	}
}

func binOf(p *pair) int {
	return bin2(int(p.d/binD), int(p.a1>>binAShift))
}

func bin2(d, a1 int) int {
	return d*nBinA + (a1 & (nBinA - 1))
}

// atan2 is a fast approximation of math.Atan2 (error below 0.01 degree)
// as a binary angle.
func atan2(y, x float32) uint16 {
	ax, ay := x, y
	if ax < 0 {
		ax = -ax
	}
	if ay < 0 {
		ay = -ay
	}
	if ax == 0 && ay == 0 {
		return 0
	}
	var a float32 // [0, π/2]
	if ay <= ax {
		a = atanUnit(ay / ax)
	} else {
		a = math.Pi/2 - atanUnit(ax/ay)
	}
	u := uint16(int32(a * (turn / (2 * math.Pi))))
	switch {
	case x >= 0 && y >= 0:
		return u
	case x < 0 && y >= 0:
		return turn/2 - u
	case x < 0:
		return turn/2 + u
	}
	return -u
}

// atanUnit approximates atan(z) for z in [0, 1] (minimax polynomial).
func atanUnit(z float32) float32 {
	z2 := z * z
	return z * (0.99997726 + z2*(-0.33262347+z2*(0.19354346+z2*(-0.11643287+z2*(0.05265332+z2*-0.01172120)))))
}
