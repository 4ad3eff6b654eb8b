package index

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/uias/uias/services/authz"
)

// decodeGrant answers exactly as encoding/json does, for every grant
// json.Marshal writes (the fast path) and for anything else (handed on).
func TestDecodeGrantAgreesWithEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "a", "r00012", "u000123", "org\"quoted", "back\\slash", "ünïcödé", "tab\there", "<html>&", "\u2028"}
	pick := func() string { // mostly plain (the fast path), sometimes not
		if rng.IntN(10) == 0 {
			return strs[rng.IntN(len(strs))]
		}
		return strs[rng.IntN(3)]
	}
	times := []time.Time{{}, time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC),
		time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 8*3600))}
	kinds := []authz.SubjectKind{authz.SubjectUser, authz.SubjectGroup, authz.SubjectOrg, "other"}
	fast := 0
	for i := range 5000 {
		g := authz.Grant{ID: fmt.Sprint("gr", i), Role: pick(), Subject: authz.Subject{Kind: kinds[rng.IntN(len(kinds))], ID: pick()},
			ValidFrom: times[rng.IntN(len(times))], ValidUntil: times[rng.IntN(len(times))], ScopeOrg: pick(),
			Delegable: rng.IntN(2) == 0, CreatedAt: times[rng.IntN(len(times))], CreatedBy: pick()}
		for range rng.IntN(3) {
			g.Grantable = append(g.Grantable, pick())
		}
		if rng.IntN(3) == 0 { // a direct grant
			g.Permission = authz.Permission{App: pick(), Resource: pick(), Operation: pick()}
		}
		b, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		check(t, b)
		if fastGrant(&authz.Grant{}, b, "", nil) {
			fast++
		}
	}
	if fast < 1000 {
		t.Errorf("only %d of 5000 grants took the fast path", fast)
	}
	// Hand-written JSON: whitespace, unknown keys, nulls, duplicates,
	// broken input, empty lists, invalid UTF-8.
	for _, s := range []string{
		`{}`, `{"id":"a"}`, `{ "id":"a"}`, `{"id":"a","x":1}`, `{"id":null}`, `{"id":"a","id":"b"}`,
		`{"subject":{"kind":"user","id":"u","kind":"org"}}`, `{"subject":{}}`, `{"subject":null}`,
		`{"grantable":[]}`, `{"grantable":["a","b"]}`, `{"grantable":null}`, `{"delegable":true}`, `{"delegable":false}`,
		`{"delegable":1}`, `{"valid_from":"2026-13-01T00:00:00Z"}`, `{"valid_from":"2026-12-01T00:00:00Z"}`,
		`{"permission":{"app":"a","resource":"r","operation":"o"}}`, `{"permission":{"operation":"o","app":"a"}}`,
		`{"permission":{}}`, `{"permission":null}`, `{"permission":{"app":"a","app":"b"}}`, `{"permission":{"x":"a"}}`,
		`{"permission":{"app":1}}`, `{"permission":"a:r:o"}`,
		`{"id":"a"}x`, `{"id":"a"`, `{"id":"\u00e9"}`, "{\"id\":\"\xff\"}", `[]`, ``, `{"Role":"r"}`,
	} {
		check(t, []byte(s))
	}
}

func check(t *testing.T, b []byte) {
	t.Helper()
	var want authz.Grant
	wantErr := json.Unmarshal(b, &want)
	got, err := decodeGrant(b)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: error %v, encoding/json %v", b, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", b, got, want)
	}
	// With a Decoder keeping one copy of each string, and the row's id.
	var viaDecoder authz.Grant
	err = decodeGrantInto(&viaDecoder, b, want.ID, shared)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: error %v with a decoder, encoding/json %v", b, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(viaDecoder, want) {
		t.Fatalf("%s with a decoder:\n got %#v\nwant %#v", b, viaDecoder, want)
	}
}

var shared = NewDecoder()
