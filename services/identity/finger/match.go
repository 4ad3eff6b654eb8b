package finger

import (
	"math"
	"sync"
)

// The comparison, in three steps:
//
//  1. Pair correspondences. Every indexed probe pair (i -> j) is looked up
//     among the gallery pairs with the same distance and the same
//     directions of both minutiae relative to the segment (within
//     tolerances): features that rotation and translation leave alone.
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
//     in the area the two impressions share.
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
)

func pairTolD(d float32) float32 { return min(9, 3+0.07*d) }

type corr struct {
	pi, pj, gk, gl uint8
	rot            uint16
}

type scratch struct {
	corrs []corr
	votes []uint16
	cand  []cand
	pairs []cand
	usedP []bool
	usedG []bool
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
	// 1. Pair correspondences.
	s.corrs = s.corrs[:0]
	var hist [rotBins]int32
	for idx := range p.pairs {
		pp := &p.pairs[idx]
		tol := pairTolD(pp.d)
		dlo, dhi := max(0, int((pp.d-tol)/binD)), min(nBinD-1, int((pp.d+tol)/binD))
		alo := int((pp.a1 - pairTolA) >> binAShift)
		ahi := int((pp.a1 + pairTolA) >> binAShift)
		if ahi < alo {
			ahi += nBinA
		}
		for bd := dlo; bd <= dhi; bd++ {
			for ba := alo; ba <= ahi; ba++ {
				b := bin2(bd, ba)
				for _, gi := range g.byBin[g.bins[b]:g.bins[b+1]] {
					gp := &g.pairs[gi]
					dd := gp.d - pp.d
					if dd > tol || dd < -tol || adiff(gp.a2, pp.a2) > pairTolA || adiff(gp.a1, pp.a1) > pairTolA {
						continue
					}
					rot := gp.phi - pp.phi
					s.corrs = append(s.corrs, corr{pi: pp.i, pj: pp.j, gk: gp.i, gl: gp.j, rot: rot})
					hist[rot>>rotShift]++
				}
			}
		}
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
	if cap(s.votes) < np*ng {
		s.votes = make([]uint16, np*ng)
	}
	votes := s.votes[:np*ng]
	clear(votes)
	const window = 3 << (rotShift - 1) // 1.5 bins
	for _, c := range s.corrs {
		dr := int(int16(c.rot - center))
		if dr > window || dr < -window {
			continue
		}
		sum += dr
		cnt++
		votes[int(c.pi)*ng+int(c.gk)]++
		votes[int(c.pj)*ng+int(c.gl)]++
	}
	rot := center + uint16(sum/cnt)

	// The seeds: the most voted minutia correspondences.
	var seeds [seedCount]int
	var seedV [seedCount]uint16
	for idx, v := range votes {
		if v <= seedV[seedCount-1] {
			continue
		}
		q := seedCount - 1
		for q > 0 && seedV[q-1] < v {
			seeds[q], seedV[q] = seeds[q-1], seedV[q-1]
			q--
		}
		seeds[q], seedV[q] = idx, v
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
	for q := range seedCount {
		if seedV[q] == 0 {
			break
		}
		a0, b0 := seeds[q]/ng, seeds[q]%ng
		sc := align(p, g, p.x[a0], p.y[a0], g.x[b0], g.y[b0], sn, cs, rot, s)
		if sc > bestScore {
			bestScore = sc
			bestSeed = q
		}
	}
	if bestSeed < 0 {
		return 0
	}
	// Refinement: fit rotation and translation to the pairs of the best
	// alignment (least squares), then pair again from their centre.
	a0, b0 := seeds[bestSeed]/ng, seeds[bestSeed]%ng
	align(p, g, p.x[a0], p.y[a0], g.x[b0], g.y[b0], sn, cs, rot, s)
	if len(s.pairs) >= 3 {
		var cpx, cpy, cgx, cgy float32
		for _, x := range s.pairs {
			cpx, cpy = cpx+p.x[x.a], cpy+p.y[x.a]
			cgx, cgy = cgx+g.x[x.b], cgy+g.y[x.b]
		}
		k := float32(len(s.pairs))
		cpx, cpy, cgx, cgy = cpx/k, cpy/k, cgx/k, cgy/k
		var sxy, sxx float64
		for _, x := range s.pairs {
			ax, ay := p.x[x.a]-cpx, p.y[x.a]-cpy
			bx, by := g.x[x.b]-cgx, g.y[x.b]-cgy
			sxy += float64(ax*by - ay*bx)
			sxx += float64(ax*bx + ay*by)
		}
		r2 := math.Atan2(sxy, sxx)
		sin2, cos2 := math.Sincos(r2)
		sc := align(p, g, cpx, cpy, cgx, cgy, float32(sin2), float32(cos2), toBAM(r2), s)
		bestScore = max(bestScore, sc)
	}
	return bestScore
}

// align pairs the minutiae of p, turned by rot (sine sn, cosine cs)
// about (px0, py0) and moved onto (gx0, gy0), with those of g, keeps the
// pairs in s.pairs and returns the score.
func align(p, g *Template, px0, py0, gx0, gy0, sn, cs float32, rot uint16, s *scratch) float64 {
	np, ng := p.n, g.n
	s.cand = s.cand[:0]
	var inG int // probe minutiae inside the gallery's area
	for a := range np {
		dx, dy := p.x[a]-px0, p.y[a]-py0
		qx := cs*dx - sn*dy + gx0
		qy := sn*dx + cs*dy + gy0
		if qx < g.minX-overlapPad || qx > g.maxX+overlapPad || qy < g.minY-overlapPad || qy > g.maxY+overlapPad {
			continue
		}
		inG++
		rx, ry := qx-gx0, qy-gy0
		tol := min(alignMaxD, alignTolD+alignTolR*float32(math.Sqrt(float64(rx*rx+ry*ry))))
		tol2 := tol * tol
		qt := p.theta[a] + rot
		// The gallery is sorted by x: start at the first within tol.
		lo, hi := 0, ng
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if g.x[mid] < qx-tol {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
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
	for b := range ng {
		dx, dy := g.x[b]-gx0, g.y[b]-gy0
		qx := cs*dx + sn*dy + px0
		qy := -sn*dx + cs*dy + py0
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
