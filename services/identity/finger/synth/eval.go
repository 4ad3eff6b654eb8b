package synth

import (
	"runtime"
	"slices"
	"sync"

	"github.com/uias/uias/services/identity/finger"
)

// Scores are the comparison scores of a set: genuine (two impressions of
// one finger: every pair of impressions of every finger) and impostor
// (first impressions of two different fingers: every pair of fingers).
type Scores struct {
	Genuine, Impostor []float64
	Fingers, Imps     int
}

// Collect generates fingers x imps impressions of the set p and compares
// them, on GOMAXPROCS goroutines. Records are parsed and prepared once
// each.
func Collect(p Params, fingers, imps int) (*Scores, error) {
	tpls := make([][]*finger.Template, fingers)
	var firstErr error
	var mu sync.Mutex
	parallel(fingers, func(i int) {
		f := NewFinger(p, i)
		tpls[i] = make([]*finger.Template, imps)
		for k := range imps {
			r, err := finger.Parse(f.Impression(k))
			if err == nil {
				tpls[i][k], err = finger.Prepare(r, 0)
			}
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}
	})
	if firstErr != nil {
		return nil, firstErr
	}
	s := &Scores{Fingers: fingers, Imps: imps}
	gen := make([][]float64, fingers)
	parallel(fingers, func(i int) {
		for a := range imps {
			for b := a + 1; b < imps; b++ {
				gen[i] = append(gen[i], finger.Score(tpls[i][a], tpls[i][b]))
			}
		}
	})
	imp := make([][]float64, fingers)
	parallel(fingers, func(i int) {
		for j := i + 1; j < fingers; j++ {
			imp[i] = append(imp[i], finger.Score(tpls[i][0], tpls[j][0]))
		}
	})
	s.Genuine, s.Impostor = slices.Concat(gen...), slices.Concat(imp...)
	return s, nil
}

func parallel(n int, f func(i int)) {
	w := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	next := make(chan int)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// Rates are the error rates of a set of scores.
type Rates struct {
	EER           float64 // equal error rate
	FNMRAt1e3     float64 // false non-match rate at FMR 1e-3
	FNMRAt1e4     float64 // ... at FMR 1e-4
	Threshold1e3  float64 // the score thresholds those use
	Threshold1e4  float64
	GenuineCount  int
	ImpostorCount int
}

// Rates computes the error rates: a comparison matches when its score is
// >= the threshold; the threshold for an FMR is the lowest score that
// keeps the share of impostor scores at or above it within that FMR.
func (s *Scores) Rates() Rates {
	g, im := slices.Clone(s.Genuine), slices.Clone(s.Impostor)
	slices.Sort(g)
	slices.Sort(im)
	r := Rates{GenuineCount: len(g), ImpostorCount: len(im)}
	r.Threshold1e3, r.FNMRAt1e3 = atFMR(g, im, 1e-3)
	r.Threshold1e4, r.FNMRAt1e4 = atFMR(g, im, 1e-4)
	r.EER = eer(g, im)
	return r
}

// ThresholdAt is the lowest threshold whose FMR on these impostor scores
// is at most fmr.
func (s *Scores) ThresholdAt(fmr float64) float64 {
	im := slices.Clone(s.Impostor)
	slices.Sort(im)
	return threshold(im, fmr)
}

func threshold(im []float64, fmr float64) float64 {
	allowed := int(fmr * float64(len(im))) // impostor scores allowed at or above
	if allowed >= len(im) {
		return 0
	}
	// Scores above the (allowed+1)-th highest impostor score.
	t := im[len(im)-1-allowed]
	return nextUp(t)
}

func nextUp(t float64) float64 { return t + 1e-9 }

func atFMR(g, im []float64, fmr float64) (float64, float64) {
	t := threshold(im, fmr)
	return t, frac(g, t)
}

// frac is the share of sorted scores below t.
func frac(sorted []float64, t float64) float64 {
	i, _ := slices.BinarySearch(sorted, t)
	return float64(i) / float64(len(sorted))
}

func eer(g, im []float64) float64 {
	// Scan thresholds over all scores for where FNMR (genuine below) and
	// FMR (impostor at or above) cross.
	best := 1.0
	cands := slices.Concat(g, im)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	lo, hi := 0, len(cands)-1
	for lo < hi { // FNMR grows and FMR falls with the threshold
		mid := (lo + hi) / 2
		t := cands[mid]
		if frac(g, t) < 1-frac(im, t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for _, i := range []int{lo - 1, lo} {
		if i < 0 || i >= len(cands) {
			continue
		}
		t := cands[i]
		fnmr, fmr := frac(g, t), 1-frac(im, t)
		best = min(best, max(fnmr, fmr))
	}
	return best
}
