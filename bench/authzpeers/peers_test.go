package authzpeers_test

import (
	"context"
	"testing"
	"time"

	"github.com/uias/uias/bench/authzpeers"
	"github.com/uias/uias/services/authz/dataset"
)

// Every engine answers every generated check of the Small data set as our
// index does, and both answers occur.
func TestPeersAgreeWithIndex(t *testing.T) {
	ctx := context.Background()
	d := dataset.Generate(dataset.Small, 7, 2000)
	now := time.Now()
	idx, err := d.Index()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := authzpeers.LoadCasbin(d, now)
	if err != nil {
		t.Fatal(err)
	}
	fga, err := authzpeers.LoadOpenFGA(ctx, d, now)
	if err != nil {
		t.Fatal(err)
	}
	defer fga.Close()
	allowed := 0
	for _, c := range d.Checks {
		want, _ := idx.Check(c.Query(), now)
		if want {
			allowed++
		}
		got, err := cb.Check(c)
		if err != nil || got != want {
			t.Fatalf("%+v: casbin %v (%v), index %v", c, got, err, want)
		}
		got, err = fga.Check(ctx, c)
		if err != nil || got != want {
			t.Fatalf("%+v: openfga %v (%v), index %v", c, got, err, want)
		}
	}
	if allowed == 0 || allowed == len(d.Checks) {
		t.Fatalf("%d of %d checks allowed: both answers must occur", allowed, len(d.Checks))
	}
	t.Logf("%d of %d checks allowed, %d OpenFGA tuples", allowed, len(d.Checks), fga.Tuples)
}

// The loaders fail cleanly on nothing: an empty data set denies.
func TestPeersEmptyDataDenies(t *testing.T) {
	ctx := context.Background()
	d := &dataset.Data{OrgParent: map[string]string{}, UserOrg: map[string]string{}, GroupUsers: map[string][]string{}}
	cb, err := authzpeers.LoadCasbin(d, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fga, err := authzpeers.LoadOpenFGA(ctx, d, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer fga.Close()
	c := dataset.Check{Person: "u000001", App: "app00", Resource: "m00.r00", Operation: "read"}
	if ok, err := cb.Check(c); err != nil || ok {
		t.Fatalf("casbin: %v %v", ok, err)
	}
	if ok, err := fga.Check(ctx, c); err != nil || ok {
		t.Fatalf("openfga: %v %v", ok, err)
	}
}
