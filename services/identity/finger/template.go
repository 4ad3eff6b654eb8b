package finger

import (
	"errors"
	"math"
	"sync"
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
// units, sorted by x, and the rotation- and translation-invariant
// features of the pairs each minutia forms with its nearest neighbours,
// stored in one flat array ordered by those features (no maps, no
// pointers: a prepared template is a few kilobytes that a cache can keep).
type Template struct {
	n     int
	x, y  []float32
	theta []uint16
	// minX.. bound the minutiae (the area the finger covered).
	minX, minY, maxX, maxY float32

	// pairs holds both directions of every neighbour pair (i is among
	// j's nearest or j among i's), ordered by bin: pairs[bins[k]:bins[k+1]]
	// are the pairs whose features fall into bin k.
	pairs []pair
	phi   []uint16 // phi[k]: the direction of the segment of pairs[k]
	bins  [nBins + 1]int16

	// xIdx[c] is the first minutia with x >= minX + c/xInv: where a scan
	// of the minutiae near some x starts (instead of a binary search).
	xIdx [xCells + 1]uint8
	xInv float32
}

const xCells = 64

// pair is the directed pair i -> j: its length (in 1/16 pixel) and both
// minutiae's directions relative to the segment i -> j (invariant to
// rotation and translation). Eight bytes, so that a scan of a bin
// touches little memory; the segment's absolute direction, needed only
// for a correspondence found, is kept apart.
type pair struct {
	d      uint16
	a1, a2 uint16
	i, j   uint8
}

// dUnit is the unit of pair.d: 1/16 pixel.
const dUnit = 16

// Neighbours per minutia whose pairs are indexed.
const neighbours = 6

// Pair index: buckets by distance (binD pixels) and the first minutia's
// relative angle (nBinA buckets); a probe pair visits the buckets its
// tolerances cover and checks the rest exactly.
const (
	binD      = 8 * dUnit
	maxD      = 160 * dUnit
	nBinD     = maxD / binD
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
	t.xInv = xCells / max(t.maxX-t.minX, 1)
	for c, i := 0, 0; c <= xCells; c++ {
		for i < n && (t.x[i]-t.minX)*t.xInv < float32(c) {
			i++
		}
		t.xIdx[c] = uint8(i)
	}
	t.buildPairs(k)
	return t, nil
}

// firstAtLeast is the index of the first minutia whose x is at least x.
func (t *Template) firstAtLeast(x float32) int {
	c := int((x-t.minX)*t.xInv) - 1
	if c > xCells {
		return t.n
	}
	i := 0
	if c > 0 {
		i = int(t.xIdx[c])
	}
	for i < t.n && t.x[i] < x {
		i++
	}
	return i
}

// Len is the number of minutiae.
func (t *Template) Len() int { return t.n }

func (t *Template) buildPairs(k int) {
	n := t.n
	var nd [neighbours]float32
	var ni [neighbours]uint8
	ps := prepPool.Get().(*prepScratch)
	defer prepPool.Put(ps)
	// seen marks the unordered pairs {i, j} (i < j) already taken.
	seen := ps.seen[:(n*n+63)/64]
	clear(seen)
	all, phis := ps.all[:0], ps.phis[:0]
	for i := range n {
		// The k nearest others: walk out from i in x order while the
		// x distance alone can still beat the k-th nearest so far.
		cnt := 0
		xi, yi := t.x[i], t.y[i]
		for lo, hi := i-1, i+1; lo >= 0 || hi < n; {
			if hi < n {
				if cnt, hi = nearer(t, xi, yi, hi, k, cnt, &nd, &ni); hi < 0 {
					hi = n
				} else {
					hi++
				}
			}
			if lo >= 0 {
				if cnt, lo = nearer(t, xi, yi, lo, k, cnt, &nd, &ni); lo >= 0 {
					lo--
				}
			}
		}
		for c := range cnt {
			j := int(ni[c])
			a, b := min(i, j), max(i, j)
			bit := a*n + b
			if seen[bit>>6]&(1<<(bit&63)) != 0 {
				continue
			}
			seen[bit>>6] |= 1 << (bit & 63)
			df := math.Sqrt(float64(nd[c])) * dUnit
			if df >= maxD || df < dUnit {
				continue
			}
			d := uint16(df + 0.5)
			phi := atan2(t.y[j]-yi, t.x[j]-xi)
			back := phi + turn/2
			all = append(all,
				pair{i: uint8(i), j: uint8(j), d: d, a1: t.theta[i] - phi, a2: t.theta[j] - phi},
				pair{i: uint8(j), j: uint8(i), d: d, a1: t.theta[j] - back, a2: t.theta[i] - back})
			phis = append(phis, phi, back)
		}
	}
	// Counting sort of the pairs into their bins.
	for idx := range all {
		t.bins[binOf(&all[idx])+1]++
	}
	for b := 1; b <= nBins; b++ {
		t.bins[b] += t.bins[b-1]
	}
	t.pairs = make([]pair, len(all))
	t.phi = make([]uint16, len(all))
	var fill [nBins]int16
	for idx := range all {
		b := binOf(&all[idx])
		to := t.bins[b] + fill[b]
		t.pairs[to], t.phi[to] = all[idx], phis[idx]
		fill[b]++
	}
}

// prepScratch is the working memory of buildPairs (kept off the stack:
// zeroing its worst case on every call would cost more than the work).
type prepScratch struct {
	seen [(255*255 + 63) / 64]uint64
	all  []pair
	phis []uint16
}

var prepPool = sync.Pool{New: func() any {
	// At most n*k unordered pairs, two directions each.
	return &prepScratch{all: make([]pair, 0, 255*neighbours*2), phis: make([]uint16, 0, 255*neighbours*2)}
}}

// nearer considers minutia j as one of the k nearest to (xi, yi) found so
// far (cnt of them, by distance in nd, ni). It returns the new count, and
// j, or -1 when j and every minutia farther out in x order are too far
// in x alone.
func nearer(t *Template, xi, yi float32, j, k, cnt int, nd *[neighbours]float32, ni *[neighbours]uint8) (int, int) {
	dx := t.x[j] - xi
	if cnt == k && dx*dx >= nd[k-1] {
		return cnt, -1
	}
	dy := t.y[j] - yi
	d2 := dx*dx + dy*dy
	if cnt == k && d2 >= nd[k-1] {
		return cnt, j
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
	return cnt, j
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
