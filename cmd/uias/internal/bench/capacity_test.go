package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The capacity command's flags: the design's sizing by default, the mix
// read and checked, nonsense refused with a message naming the flag.
func TestCapacityFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseCapacityFlags(nil, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.people != 10_000 || o.online != 1_000 || o.mix != (capMix{55, 35, 10}) || o.think != 10*time.Second {
		t.Errorf("defaults %+v", o)
	}
	o, err = parseCapacityFlags([]string{"--mix", "sso=1,check=0,relogin=3", "--online", "5", "--people", "10"}, &stderr)
	if err != nil || o.mix != (capMix{1, 0, 3}) {
		t.Fatalf("mix: %+v %v", o, err)
	}
	if a, b, c := o.mix.pick(0), o.mix.pick(1), o.mix.pick(3); a != actSSO || b != actRelogin || c != actRelogin {
		t.Errorf("pick: %v %v %v", a, b, c)
	}
	for _, bad := range [][]string{
		{"--mix", "sso=1,browse=2"}, {"--mix", "sso=0,check=0,relogin=0"}, {"--mix", "sso=-1"},
		{"--online", "100", "--people", "100"}, {"--think", "0s"}, {"--argon2-memory", "1"}, {"extra"},
	} {
		if _, err := parseCapacityFlags(bad, &stderr); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The report's rows from a run's figures: the p99 goal judged absolutely
// (4 s), refusals and failures judged none, each action's row.
func TestCapacityReport(t *testing.T) {
	real := &capStats{window: time.Second, cpu: time.Second, wall: 2 * time.Second, rssPeak: 300 << 20, heapPeak: 100 << 20}
	real.lat[actSSO] = []time.Duration{time.Millisecond, 2 * time.Millisecond}
	real.lat[actRelogin] = []time.Duration{5 * time.Second}
	real.exhausted = 1
	floor := &capStats{window: time.Second, wall: time.Second}
	floor.lat[actEcho] = []time.Duration{time.Millisecond}
	o, err := parseCapacityFlags([]string{"--duration", "1s"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	rep := &capReport{o: o, m: thisMachine(), started: time.Now(), ramp: &capRamp{logins: 2, wall: time.Second, cpu: 60 * time.Millisecond,
		lat: []time.Duration{time.Second}}, real: real, floor: floor, rssIdle: 100 << 20, workers: 2}
	sec := rep.section()
	for _, want := range []string{
		"| Answers p99, every action | 5000 ms | 1.00 ms | 5000.00× | ≤ 4 s (absolute) | FAIL |",
		"| Refused (RESOURCE_EXHAUSTED, HTTP 429) | 1 | of 4 answers | — | none | FAIL |",
		"| Failed | 0 | — | — | none | PASS |",
		"| sso: CAS ticket issued + p3/serviceValidate (REST) | p50 1.00 ms",
		"| Ramp: CPU per password login | 30.0 CPU-ms |",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("report lacks %q:\n%s", want, sec)
		}
	}
	page := putSection(capPageHead, o.heading, sec)
	if !strings.HasPrefix(page, capPageHead) || !strings.Contains(page, "## "+o.heading) {
		t.Errorf("page:\n%s", page)
	}
	if strings.Count(putSection(page, o.heading, sec), "## "+o.heading) != 1 {
		t.Error("a second run does not replace its section")
	}
}
