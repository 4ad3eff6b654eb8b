package finger

import (
	"math"
	"sync"
)

// The comparison, in three steps:
//
//  1. Pair correspondences. Every probe pair {i, j} (one direction: the
//     gallery holds both) is looked up among the gallery pairs with the
//     same distance and the same directions of both minutiae relative to
//     the segment (within tolerances): features that rotation and
//     translation leave alone. The gallery's pairs lie in one flat array
//     ordered by those features, so a lookup is a few contiguous scans,
//     each candidate tested without branches.
//     Each correspondence (i -> j ~ k -> l) proposes a rotation: the
//     angle between the two segments.
//  2. Consensus. The rotations vote in a histogram; the correspondences
//     near its peak vote for the minutia correspondences they imply
//     (i ~ k, j ~ l). The best supported of those become alignment seeds.
//  3. Alignment. For each seed the probe is rotated by the consensus
//     rotation about the seed and moved onto it; minutiae are paired one
//     to one, nearest first, within a distance tolerance that grows with
//     the distance from the seed (skin stretches more the farther it is
//     from where the two impressions agree) and an angle tolerance. The
//     score counts the pairs against the minutiae of both fingers that lie
//     in the area the two impressions share. A seed that an earlier
//     alignment already paired closely is skipped (it would align the
//     same way); the best alignment is refined once by least squares.
//
// Score allocates nothing once its pooled scratch has grown; a prepared
// Template is read only, so one may be shared (identity caches them).
//
// Missing and spurious minutiae only lower the count of pairs; neither
// the pair index nor the alignment needs a complete or exact set.

// Tolerances (500 dpi pixels; angles in binary units, 65536 a turn).
const (
	pairTolA   = uint16(16 * turn / 360) // relative angles of a pair
	rotShift   = 11                      // rotation histogram: 32 bins of 11.25 degrees
	rotBins    = turn >> rotShift
	seedCount  = 4                       // alignments tried
	alignTolA  = uint16(25 * turn / 360) // minutia direction after alignment
	alignTolD  = 10.0                    // position after alignment, at the seed...
	alignTolR  = 0.06                    // ...plus this much per pixel from the seed
	alignMaxD  = 24.0                    // ...up to this
	overlapPad = 16.0                    // margin of the shared area
	minArea    = 25                      // fewest minutiae counted in a shared area
	// A seed that an alignment tried already pairs within this squared
	// distance is not tried again: its alignment would be about the same.
	dedupeD2 = 4 * 4
	// An alignment scoring sureScore needs no other try nor refinement:
	// it is above every calibrated threshold (at most about 0.23), so
	// no decision could change; only scores that settle one are searched
	// to the end.
	sureScore = 0.3
)

// pairTolD is the tolerance on the length d of a pair (both in 1/16
// pixel): 3 pixels, plus 7% of the length, up to 9 pixels.
func pairTolD(d uint16) int32 { return min(9*dUnit, 3*dUnit+int32(d)*7/100) }

type corr struct {
	pi, pj, gk, gl uint8
	rot            uint16
}

type scratch struct {
	found  []uint32 // probe pair << 16 | gallery pair
	corrs  []corr
	votes  []uint16
	cand   []cand
	pairs  []cand
	best   []cand    // the pairs of the best alignment so far
	rp, rg []float32 // turned minutiae (turn2)
	paired []uint8   // probe minutia -> gallery minutia + 1 in an alignment tried
	usedP  []bool
	usedG  []bool
}

type cand struct {
	a, b uint8
	d2   float32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Score compares a probe with a gallery template and returns a similarity
// in [0, 1]: about the square of the share of the minutiae in the area
// both impressions cover that pair up (1 for identical sets). Thresholds
// come from Threshold.
func Score(p, g *Template) float64 {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	return score(p, g, s)
}

func score(p, g *Template, s *scratch) float64 {
	// 1. Pair correspondences. Every unordered probe pair is looked up in
	// one direction (the gallery holds both); the bins of one distance
	// bucket that the angle tolerance covers are adjacent in g.pairs, so
	// each is one contiguous scan (two where the angle wraps).
	var hist [rotBins]int32
	gp := g.pairs
	found, nc := s.found[:cap(s.found)], 0
	for idx := range p.pairs {
		pp := &p.pairs[idx]
		if pp.i > pp.j {
			continue
		}
		tol := pairTolD(pp.d)
		d, span := int32(pp.d), uint32(2*tol)
		// Each test below is one unsigned comparison: the difference
		// shifted by the tolerance lies in [0, 2 tol] (angles wrap).
		dlo, a1, a2 := d-tol, pp.a1-pairTolA, pp.a2-pairTolA
		blo, bhi := max(0, int(d-tol)/binD), min(nBinD-1, int(d+tol)/binD)
		alo := int(a1 >> binAShift)
		ahi := int((pp.a1 + pairTolA) >> binAShift)
		for bd := blo; bd <= bhi; bd++ {
			base := bd * nBinA
			lo, hi := int(g.bins[base+alo]), int(g.bins[base+ahi+1])
			lo2, hi2 := 0, 0
			if ahi < alo { // wraps: [alo, nBinA) and [0, ahi]
				lo, hi = int(g.bins[base+alo]), int(g.bins[base+nBinA])
				lo2, hi2 = int(g.bins[base]), int(g.bins[base+ahi+1])
			}
			for {
				// Without branches: every candidate is written, and the
				// count moves on only for a correspondence.
				if need := nc + hi - lo; need > len(found) {
					found = append(found[:nc], make([]uint32, need-nc+256)...)
					found = found[:cap(found)]
				}
				for k := lo; k < hi; k++ {
					q := gp[k]
					out := uint32((uint64(span)-uint64(uint32(int32(q.d)-dlo)))>>63) |
						(2*uint32(pairTolA)-uint32(q.a2-a2))>>31 | (2*uint32(pairTolA)-uint32(q.a1-a1))>>31
					found[nc] = uint32(idx)<<16 | uint32(k)
					nc += int(1 - out)
				}
				if hi2 == 0 {
					break
				}
				lo, hi, hi2 = lo2, hi2, 0
			}
		}
	}
	s.found = found
	s.corrs = s.corrs[:0]
	for _, f := range found[:nc] {
		pi, gk := f>>16, f&0xffff
		pp, q := &p.pairs[pi], &g.pairs[gk]
		rot := g.phi[gk] - p.phi[pi]
		s.corrs = append(s.corrs, corr{pi: pp.i, pj: pp.j, gk: q.i, gl: q.j, rot: rot})
		hist[rot>>rotShift]++
	}
	if len(s.corrs) == 0 {
		return 0
	}

	// 2. Consensus: the rotation peak (three bins), the mean rotation in
	// it, and the minutia correspondences voted for from within it.
	best, bestN := 0, int32(-1)
	for b := range rotBins {
		n := hist[(b+rotBins-1)%rotBins] + hist[b] + hist[(b+1)%rotBins]
		if n > bestN {
			best, bestN = b, n
		}
	}
	center := uint16(best<<rotShift + 1<<(rotShift-1))
	var sum, cnt int
	np, ng := p.n, g.n
	if len(s.votes) < np*ng {
		s.votes = make([]uint16, np*ng) // zero, and kept zero between calls
	}
	votes := s.votes
	const window = 3 << (rotShift - 1) // 1.5 bins
	// Only the correspondences within the window vote: move them to the
	// front, then count, rank and clear through them alone (not the whole
	// np x ng table).
	in := s.corrs[:0]
	for _, c := range s.corrs {
		dr := int(int16(c.rot - center))
		if dr > window || dr < -window {
			continue
		}
		sum += dr
		cnt++
		in = append(in, c)
		votes[int(c.pi)*ng+int(c.gk)]++
		votes[int(c.pj)*ng+int(c.gl)]++
	}
	rot := center + uint16(sum/cnt)

	// The seeds: the most voted minutia correspondences (ties: the lower
	// index, as a scan of the whole table would find them).
	var seeds [seedCount]int
	var seedV [seedCount]uint16
	consider := func(idx int) {
		v := votes[idx]
		if v < seedV[seedCount-1] || (v == seedV[seedCount-1] && (v == 0 || idx >= seeds[seedCount-1])) {
			return
		}
		for q := range seedCount {
			if seedV[q] != 0 && seeds[q] == idx {
				return
			}
		}
		q := seedCount - 1
		for q > 0 && (seedV[q-1] < v || (seedV[q-1] == v && seeds[q-1] > idx)) {
			seeds[q], seedV[q] = seeds[q-1], seedV[q-1]
			q--
		}
		seeds[q], seedV[q] = idx, v
	}
	for _, c := range in {
		consider(int(c.pi)*ng + int(c.gk))
		consider(int(c.pj)*ng + int(c.gl))
	}
	for _, c := range in {
		votes[int(c.pi)*ng+int(c.gk)] = 0
		votes[int(c.pj)*ng+int(c.gl)] = 0
	}

	// 3. Alignment from each seed.
	if cap(s.usedP) < np {
		s.usedP = make([]bool, np)
	}
	if cap(s.usedG) < ng {
		s.usedG = make([]bool, ng)
	}
	sin, cos := math.Sincos(bamRad(rot))
	sn, cs := float32(sin), float32(cos)
	var bestScore float64
	bestSeed := -1
	if cap(s.paired) < np {
		s.paired = make([]uint8, np)
	}
	paired := s.paired[:np]
	clear(paired)
	turn2(p, g, sn, cs, s)
	for q := range seedCount {
		if seedV[q] == 0 || bestScore >= sureScore {
			break
		}
		a0, b0 := seeds[q]/ng, seeds[q]%ng
		if paired[a0] == uint8(b0+1) {
			// An alignment tried already paired this seed: this one
			// would be the same up to the tolerances.
			continue
		}
		sc := align(p, g, p.x[a0], p.y[a0], g.x[b0], g.y[b0], sn, cs, rot, s)
		for _, x := range s.pairs {
			if x.d2 <= dedupeD2 {
				paired[x.a] = x.b + 1
			}
		}
		if sc > bestScore {
			bestScore = sc
			bestSeed = q
			s.best = append(s.best[:0], s.pairs...)
		}
	}
	if bestSeed < 0 {
		return 0
	}
	// Refinement: fit rotation and translation to the pairs of the best
	// alignment (least squares), then pair again from their centre.
	if bp := s.best; len(bp) >= 3 && bestScore < sureScore {
		var cpx, cpy, cgx, cgy float32
		for _, x := range bp {
			cpx, cpy = cpx+p.x[x.a], cpy+p.y[x.a]
			cgx, cgy = cgx+g.x[x.b], cgy+g.y[x.b]
		}
		k := float32(len(bp))
		cpx, cpy, cgx, cgy = cpx/k, cpy/k, cgx/k, cgy/k
		var sxy, sxx float64
		for _, x := range bp {
			ax, ay := p.x[x.a]-cpx, p.y[x.a]-cpy
			bx, by := g.x[x.b]-cgx, g.y[x.b]-cgy
			sxy += float64(ax*by - ay*bx)
			sxx += float64(ax*bx + ay*by)
		}
		r2 := math.Atan2(sxy, sxx)
		sin2, cos2 := math.Sincos(r2)
		turn2(p, g, float32(sin2), float32(cos2), s)
		sc := align(p, g, cpx, cpy, cgx, cgy, float32(sin2), float32(cos2), toBAM(r2), s)
		bestScore = max(bestScore, sc)
	}
	return bestScore
}

// turn2 sets s.rp to the probe's minutiae turned by sine sn, cosine cs,
// and s.rg to the gallery's turned back: the alignments from every seed
// share the rotation and differ only by a translation.
func turn2(p, g *Template, sn, cs float32, s *scratch) {
	if cap(s.rp) < 2*p.n {
		s.rp = make([]float32, 2*p.n)
	}
	if cap(s.rg) < 2*g.n {
		s.rg = make([]float32, 2*g.n)
	}
	rp, rg := s.rp[:2*p.n], s.rg[:2*g.n]
	for a := range p.n {
		x, y := p.x[a], p.y[a]
		rp[2*a], rp[2*a+1] = cs*x-sn*y, sn*x+cs*y
	}
	for b := range g.n {
		x, y := g.x[b], g.y[b]
		rg[2*b], rg[2*b+1] = cs*x+sn*y, -sn*x+cs*y
	}
}

// align pairs the minutiae of p, turned by rot (sine sn, cosine cs, as
// turn2 left them in s) about (px0, py0) and moved onto (gx0, gy0), with
// those of g, keeps the pairs in s.pairs and returns the score.
func align(p, g *Template, px0, py0, gx0, gy0, sn, cs float32, rot uint16, s *scratch) float64 {
	np, ng := p.n, g.n
	s.cand = s.cand[:0]
	rp, rg := s.rp[:2*np], s.rg[:2*ng]
	tx, ty := gx0-(cs*px0-sn*py0), gy0-(sn*px0+cs*py0)
	var inG int // probe minutiae inside the gallery's area
	for a := range np {
		qx, qy := rp[2*a]+tx, rp[2*a+1]+ty
		if qx < g.minX-overlapPad || qx > g.maxX+overlapPad || qy < g.minY-overlapPad || qy > g.maxY+overlapPad {
			continue
		}
		inG++
		rx, ry := qx-gx0, qy-gy0
		tol := min(alignMaxD, alignTolD+alignTolR*float32(math.Sqrt(float64(rx*rx+ry*ry))))
		tol2 := tol * tol
		qt := p.theta[a] + rot
		// The gallery is sorted by x: start at the first within tol.
		lo := g.firstAtLeast(qx - tol)
		for b := lo; b < ng && g.x[b] <= qx+tol; b++ {
			ex, ey := g.x[b]-qx, g.y[b]-qy
			if ey > tol || ey < -tol {
				continue
			}
			d2 := ex*ex + ey*ey
			if d2 > tol2 || adiff(g.theta[b], qt) > alignTolA {
				continue
			}
			s.cand = append(s.cand, cand{uint8(a), uint8(b), d2})
		}
	}
	// Gallery minutiae inside the probe's area (the inverse transform).
	var inP int
	ux, uy := px0-(cs*gx0+sn*gy0), py0-(-sn*gx0+cs*gy0)
	for b := range ng {
		qx, qy := rg[2*b]+ux, rg[2*b+1]+uy
		if qx >= p.minX-overlapPad && qx <= p.maxX+overlapPad && qy >= p.minY-overlapPad && qy <= p.maxY+overlapPad {
			inP++
		}
	}
	// One to one, nearest first.
	c := s.cand
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j-1].d2 > c[j].d2; j-- {
			c[j-1], c[j] = c[j], c[j-1]
		}
	}
	usedP, usedG := s.usedP[:np], s.usedG[:ng]
	clear(usedP)
	clear(usedG)
	s.pairs = s.pairs[:0]
	for _, x := range c {
		if usedP[x.a] || usedG[x.b] {
			continue
		}
		usedP[x.a], usedG[x.b] = true, true
		s.pairs = append(s.pairs, x)
	}
	m := len(s.pairs)
	fm := float64(m)
	return fm * fm / float64(max(inG, m, minArea)*max(inP, m, minArea))
}
