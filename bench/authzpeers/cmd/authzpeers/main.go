// Command authzpeers times, in one run, the same checks (same order) on
// our in-process index, casbin and OpenFGA loaded with the same generated
// data set (issue 10 item 7), and prints p50 and mean per check, the
// ratios to ours, load times and heap growth per engine.
//
//	cd bench/authzpeers && GOWORK=off go run ./cmd/authzpeers [-scale 1] [-checks 2000]
//
// Each check is timed on its own (two clock reads included, so small
// figures err high). OpenFGA's memory datastore keeps a store's tuples in
// one slice: a write compares every new tuple with all stored ones and a
// read scans them, so loading is quadratic; above -fga-max-tuples it is
// skipped and the run says so (measure it on a smaller -scale).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/uias/uias/bench/authzpeers"
	"github.com/uias/uias/services/authz/dataset"
)

func main() {
	scale := flag.Float64("scale", 1, "data set size as a fraction of Full (100k people, 10k orgs, 1k groups, 10k roles, 1 M grants); apps and resources stay")
	nChecks := flag.Int("checks", 2000, "checks timed on every engine (the first N of the generated ones, same order)")
	passes := flag.Int("passes", 3, "passes over the checks on our index (casbin and OpenFGA: 1); the p50 and mean are over all timings")
	fgaMax := flag.Int("fga-max-tuples", 130_000, "skip OpenFGA above this many tuples (its memory datastore loads in quadratic time)")
	seed := flag.Uint64("seed", 7, "generator seed")
	flag.Parse()
	if err := run(*scale, *nChecks, *passes, *fgaMax, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "authzpeers:", err)
		os.Exit(1)
	}
}

func scaled(f float64) dataset.Size {
	s := dataset.Full
	sc := func(n int) int { return max(1, int(float64(n)*f)) }
	s.People, s.Orgs, s.Groups, s.Roles, s.Grants = sc(s.People), sc(s.Orgs), sc(s.Groups), sc(s.Roles), sc(s.Grants)
	return s
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

type stats struct {
	p50, mean time.Duration
	n         int
}

func timeChecks(checks []dataset.Check, passes int, f func(dataset.Check) (bool, error)) (stats, []bool, error) {
	lat := make([]time.Duration, 0, len(checks)*passes)
	ans := make([]bool, len(checks))
	var total time.Duration
	for range passes {
		for i, c := range checks {
			t0 := time.Now()
			ok, err := f(c)
			d := time.Since(t0)
			if err != nil {
				return stats{}, nil, fmt.Errorf("%+v: %w", c, err)
			}
			ans[i] = ok
			lat = append(lat, d)
			total += d
		}
	}
	slices.Sort(lat)
	return stats{p50: lat[len(lat)/2], mean: total / time.Duration(len(lat)), n: len(lat)}, ans, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func run(scale float64, nChecks, passes, fgaMax int, seed uint64) error {
	ctx := context.Background()
	size := scaled(scale)
	fmt.Printf("data set: scale %g: %d people, %d orgs, %d groups, %d apps, %d roles, %d grants; %d checks timed; GOMAXPROCS %d\n",
		scale, size.People, size.Orgs, size.Groups, size.Apps, size.Roles, size.Grants, nChecks, runtime.GOMAXPROCS(0))
	t0 := time.Now()
	d := dataset.Generate(size, seed, nChecks)
	fmt.Printf("generate: %v\n", time.Since(t0).Round(time.Millisecond))
	checks := d.Checks
	now := time.Now()

	h0 := heap()
	t0 = time.Now()
	idx, err := d.Index()
	if err != nil {
		return err
	}
	fmt.Printf("load ours:    %8v  heap +%.0f MiB\n", time.Since(t0).Round(time.Millisecond), mib(heap()-h0))

	h0 = heap()
	t0 = time.Now()
	cb, err := authzpeers.LoadCasbin(d, now)
	if err != nil {
		return err
	}
	fmt.Printf("load casbin:  %8v  heap +%.0f MiB\n", time.Since(t0).Round(time.Millisecond), mib(heap()-h0))

	var fga *authzpeers.OpenFGA
	if n := len(authzpeers.OpenFGATuples(d, now)); n > fgaMax {
		fmt.Printf("load openfga: skipped: %d tuples > -fga-max-tuples %d (memory datastore: quadratic load, linear-scan reads)\n", n, fgaMax)
	} else {
		h0 = heap()
		t0 = time.Now()
		fga, err = authzpeers.LoadOpenFGA(ctx, d, now)
		if err != nil {
			return err
		}
		defer fga.Close()
		fmt.Printf("load openfga: %8v  heap +%.0f MiB  (%d tuples, batches of %d)\n",
			time.Since(t0).Round(time.Millisecond), mib(heap()-h0), fga.Tuples, authzpeers.Batch)
	}

	ours, want, err := timeChecks(checks, passes, func(c dataset.Check) (bool, error) {
		ok, _ := idx.Check(c.Query(), now)
		return ok, nil
	})
	if err != nil {
		return err
	}
	allowed := 0
	for _, w := range want {
		if w {
			allowed++
		}
	}
	fmt.Printf("checks allowed by ours: %d of %d\n", allowed, len(want))
	report := func(name string, s stats, ans []bool) {
		agree := 0
		for i := range ans {
			if ans[i] == want[i] {
				agree++
			}
		}
		fmt.Printf("%-8s p50 %10v  mean %10v  (%d timings)  agree %d/%d", name, s.p50, s.mean, s.n, agree, len(ans))
		if name != "ours" {
			fmt.Printf("  ratio to ours: p50 %.0fx  mean %.0fx", float64(s.p50)/float64(ours.p50), float64(s.mean)/float64(ours.mean))
		}
		fmt.Println()
	}
	report("ours", ours, want)
	cs, cans, err := timeChecks(checks, 1, cb.Check)
	if err != nil {
		return err
	}
	report("casbin", cs, cans)
	if fga != nil {
		fs, fans, err := timeChecks(checks, 1, func(c dataset.Check) (bool, error) { return fga.Check(ctx, c) })
		if err != nil {
			return err
		}
		report("openfga", fs, fans)
	}
	return nil
}
