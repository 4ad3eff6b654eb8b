package bench

import (
	"fmt"
	"io"
	"runtime"
	"syscall"
	"time"

	"github.com/uias/uias/services/identity/finger"
	"github.com/uias/uias/services/identity/finger/synth"
)

// The fingerprint phase: accuracy of finger.Score on the synthetic set
// (synth.Default(fingerSeed), fingerCount fingers x fingerImps
// impressions; deterministic, so measured in the first round only) and the
// speed of a 1:1 comparison against parsing both records alone. A
// comparison is finger.Score of a prepared probe against a prepared
// enrolled template: Authenticate prepares the probe once per call and
// takes enrolled templates prepared from its in-memory cache. The two
// other costs are measured beside it: preparing a probe (parse and
// prepare, once per call) and a cold comparison (parse and prepare both
// records, then score: an enrolled template not in the cache).
const (
	fingerSeed  = 1
	fingerCount = 1000
	fingerImps  = 8
	// Goals of issue 13.
	fingerGoalEER      = 0.01
	fingerGoalFNMR1e4  = 0.03
	fingerGoalPerCore  = 20000.0
	fingerSpeedSamples = 64 // record pairs the speed phase cycles through
)

type fingerRound struct {
	rates           *synth.Rates // first round only
	matchPerCore    float64      // comparisons of prepared templates per CPU-second, one thread
	probePerCore    float64      // probes parsed and prepared per CPU-second
	coldPerCore     float64      // cold comparisons (parse, prepare both, score) per CPU-second
	parsePerCore    float64      // parses of both records per CPU-second
	took            time.Duration
	matched, missed int // of the speed phase's genuine pairs at FMR 1e-4
}

func measureFinger(o *options, first bool, log io.Writer) (*fingerRound, error) {
	fr := &fingerRound{}
	if first {
		start := time.Now()
		s, err := synth.Collect(synth.Default(fingerSeed), fingerCount, fingerImps)
		if err != nil {
			return nil, err
		}
		r := s.Rates()
		fr.rates, fr.took = &r, time.Since(start)
		fmt.Fprintf(log, "  fingerprint accuracy (%d genuine, %d impostor comparisons, %s): EER %.3f%%, FNMR %.3f%% at FMR 1e-3, %.3f%% at FMR 1e-4\n",
			r.GenuineCount, r.ImpostorCount, fr.took.Round(time.Second), 100*r.EER, 100*r.FNMRAt1e3, 100*r.FNMRAt1e4)
	}
	// Speed: half genuine, half impostor pairs of records.
	p := synth.Default(fingerSeed + 100)
	pairs := make([][2][]byte, fingerSpeedSamples)
	for i := range pairs {
		f := synth.NewFinger(p, i)
		other := f
		if i%2 == 1 {
			other = synth.NewFinger(p, i+fingerSpeedSamples)
		}
		pairs[i] = [2][]byte{f.Impression(0), other.Impression(1)}
	}
	th, err := finger.Threshold(1e-4)
	if err != nil {
		return nil, err
	}
	prepare := func(b []byte) (*finger.Template, error) {
		r, err := finger.Parse(b)
		if err != nil {
			return nil, err
		}
		return finger.Prepare(r, 0)
	}
	probes, enrolled := make([]*finger.Template, len(pairs)), make([]*finger.Template, len(pairs))
	for i, p := range pairs {
		if probes[i], err = prepare(p[0]); err != nil {
			return nil, err
		}
		if enrolled[i], err = prepare(p[1]); err != nil {
			return nil, err
		}
	}
	match := func(i int) error {
		s := finger.Score(probes[i], enrolled[i])
		if i%2 == 0 {
			if s >= th {
				fr.matched++
			} else {
				fr.missed++
			}
		}
		return nil
	}
	probe := func(i int) error {
		_, err := prepare(pairs[i][0])
		return err
	}
	cold := func(i int) error {
		a, err := prepare(pairs[i][0])
		if err != nil {
			return err
		}
		b, err := prepare(pairs[i][1])
		if err != nil {
			return err
		}
		finger.Score(a, b)
		return nil
	}
	parse := func(i int) error {
		if _, err := finger.Parse(pairs[i][0]); err != nil {
			return err
		}
		_, err := finger.Parse(pairs[i][1])
		return err
	}
	// One goroutine on one locked thread, alternating with the floor in
	// slices; the thread's own CPU time is the clock, so other load on
	// the machine takes wall time but not CPU time from the figure.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var matchN, probeN, coldN, parseN int
	var matchCPU, probeCPU, coldCPU, parseCPU time.Duration
	slice := max(o.duration/time.Duration(max(1, o.slices)), 100*time.Millisecond)
	for range max(1, o.slices) {
		for _, ph := range []struct {
			f   func(int) error
			n   *int
			cpu *time.Duration
		}{{match, &matchN, &matchCPU}, {parse, &parseN, &parseCPU}, {probe, &probeN, &probeCPU}, {cold, &coldN, &coldCPU}} {
			end := time.Now().Add(slice)
			c0 := threadCPU()
			for i := 0; time.Now().Before(end); i++ {
				for k := range 16 {
					if err := ph.f((i*16 + k) % len(pairs)); err != nil {
						return nil, err
					}
				}
				*ph.n += 16
			}
			*ph.cpu += threadCPU() - c0
		}
	}
	fr.matchPerCore = float64(matchN) / matchCPU.Seconds()
	fr.probePerCore = float64(probeN) / probeCPU.Seconds()
	fr.coldPerCore = float64(coldN) / coldCPU.Seconds()
	fr.parsePerCore = float64(parseN) / parseCPU.Seconds()
	fmt.Fprintf(log, "  fingerprint 1:1 match: %.0f/s per core (probe preparation %.0f/s, cold match %.0f/s, parse of both records alone: %.0f/s per core)\n",
		fr.matchPerCore, fr.probePerCore, fr.coldPerCore, fr.parsePerCore)
	return fr, nil
}

// threadCPU is the CPU time of the calling thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fingerRows are the table rows of the fingerprint phase.
func fingerRows(rounds []*round) []*row {
	set := fmt.Sprintf("%d fingers × %d impressions (synth.Default(%d): rotation ±30°, translation ±40 px, "+
		"non-linear distortion, 10–25%% missing and 10–25%% spurious minutiae, position and angle noise; ISO and ANSI records)",
		fingerCount, fingerImps, fingerSeed)
	eer := &row{name: "Fingerprint EER", u: percent, target: 1,
		oursLabel: "equal error rate", floorLabel: "goal " + pct(fingerGoalEER),
		explain: "Equal error rate of finger.Score on " + set + ": every pair of impressions of a finger (genuine) " +
			"and the first impressions of every pair of fingers (impostor). Floor: the goal of issue 13."}
	fnmr4 := &row{name: "Fingerprint FNMR at FMR 1e-4", u: percent, target: 1,
		oursLabel: "false non-match rate", floorLabel: "goal " + pct(fingerGoalFNMR1e4),
		explain: "Share of genuine comparisons below the lowest threshold that lets at most 1 in 10,000 impostor " +
			"comparisons of the same set through (the threshold is read off this set's impostor scores). Floor: the goal."}
	fnmr3 := &row{name: "Fingerprint FNMR at FMR 1e-3", u: percent,
		oursLabel: "false non-match rate", floorLabel: "no floor",
		explain: "As above at 1 in 1,000 (no goal)."}
	speed := &row{name: "Fingerprint 1:1 match speed", u: perSec,
		oursLabel: "comparisons of prepared templates per CPU-second", floorLabel: "parse both records",
		explain: "Comparisons per second of one thread's own CPU time (so that other load on the machine does not " +
			"count): finger.Score of a prepared probe against a prepared enrolled template, as Authenticate makes " +
			"each comparison (it prepares the probe once per call and takes enrolled templates prepared from its " +
			"in-memory cache, identity.finger_template_cache); cycling through 64 record pairs of another seed, half " +
			"genuine. The floor parses the same two records, in slices alternating with ours. No goal on the ratio: " +
			"see the next rows."}
	speedGoal := &row{name: "Fingerprint 1:1 match speed against its goal", u: perSec, atLeast: true, target: 1,
		oursLabel: "comparisons per CPU-second", floorLabel: fmt.Sprintf("goal %.0f/s per core", fingerGoalPerCore),
		explain: "The figure above against the goal of issue 13."}
	probeRow := &row{name: "Fingerprint probe preparation", u: perSec,
		oursLabel: "probes parsed and prepared per CPU-second", floorLabel: "parse both records",
		explain: "Parse one record and build its template (pair index), once per Authenticate call whatever the " +
			"number of enrolled fingers, in the same slices. No goal."}
	coldRow := &row{name: "Fingerprint cold 1:1 match", u: perSec,
		oursLabel: "parse + prepare both records, score, per CPU-second", floorLabel: "parse both records",
		explain: "A comparison with nothing prepared (an enrolled template not in the cache): parse and prepare " +
			"both records, score. No goal."}
	for _, r := range rounds {
		f := r.finger
		if f == nil {
			continue
		}
		if f.rates != nil {
			eer.add(f.rates.EER, fingerGoalEER)
			fnmr4.add(f.rates.FNMRAt1e4, fingerGoalFNMR1e4)
			fnmr3.add(f.rates.FNMRAt1e3, 0)
			eer.note = fmt.Sprintf("%d genuine, %d impostor comparisons", f.rates.GenuineCount, f.rates.ImpostorCount)
			fnmr4.note = fmt.Sprintf("threshold %.3f", f.rates.Threshold1e4)
			fnmr3.note = fmt.Sprintf("threshold %.3f", f.rates.Threshold1e3)
		}
		speed.add(f.matchPerCore, f.parsePerCore)
		speedGoal.add(f.matchPerCore, fingerGoalPerCore)
		probeRow.add(f.probePerCore, f.parsePerCore)
		coldRow.add(f.coldPerCore, f.parsePerCore)
	}
	var out []*row
	for _, rw := range []*row{eer, fnmr4, fnmr3, speed, speedGoal, probeRow, coldRow} {
		if len(rw.ours) > 0 {
			out = append(out, rw)
		}
	}
	return out
}

func pct(x float64) string { return format(percent, x) }
