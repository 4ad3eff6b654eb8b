package ctl

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
)

// "uias ctl sync subscribe|subscriptions|resync|retry|deliveries|report|
// status" against a whole monolithic process: an application subscribes a
// webhook to an org subtree, people created with ctl reach it, a resync of
// the org delivers them again, reports come as a table, CSV and XLSX, and
// the REST edge answers the same.
func TestSyncProvisioningCommands(t *testing.T) {
	const pw = "Sync-Prov-Pass-1"
	a, h := startMonolith(t, pw, nil)

	var mu sync.Mutex
	var logins []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Kind   string
			Op     string
			Object map[string]any
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &b)
		if r.Header.Get("X-Uias-Signature") == "" {
			http.Error(w, "unsigned", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		if b.Kind == "identity.user" {
			login, _ := b.Object["login_name"].(string) // a delete may carry no state
			logins = append(logins, b.Op+" "+login)
		}
		mu.Unlock()
	}))
	defer hook.Close()
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), logins...)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 60s for %s (webhook got %v)", what, seen())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	var roots struct{ Orgs []struct{ Id string } }
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "org", "list")), &roots); err != nil || len(roots.Orgs) == 0 {
		t.Fatalf("org list: %v %+v", err, roots)
	}
	var org struct{ Id string }
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "org", "create", "--code", "ships", "--name", "Ships",
		"--parent", roots.Orgs[0].Id)), &org); err != nil {
		t.Fatal(err)
	}
	// A subscription is for a registered application: an unknown App_ID
	// is refused, naming it.
	h.stdin = "whsec-0123456789abcdef\n"
	if code, _, stderr := h.run("sync", "subscribe", "--app", "no-such-app", "--name", "x", "--transport", "webhook",
		"--endpoint", hook.URL, "--org", org.Id, "--secret-stdin"); code != 1 || !strings.Contains(stderr, `application "no-such-app" not found`) {
		t.Fatalf("subscribe for an unknown application: exit %d %s", code, stderr)
	}
	var created struct{ App struct{ Id string } }
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "app", "create", "--type", "CRM", "--code", "crm", "--name", "CRM")), &created); err != nil || created.App.Id == "" {
		t.Fatalf("app create: %v", err)
	}
	crm := created.App.Id
	h.stdin = "whsec-0123456789abcdef\n"
	out := h.mustRun("sync", "subscribe", "--app", crm, "--name", "CRM people", "--transport", "webhook", "--endpoint", hook.URL,
		"--org", org.Id, "--secret-stdin")
	h.stdin = ""
	if !strings.Contains(out, "secret:") || strings.Contains(out, "whsec") || !strings.Contains(out, "set") {
		t.Fatalf("subscribe output shows the secret or not that it is set:\n%s", out)
	}
	if out := h.mustRun("sync", "subscriptions", "--app", crm); !strings.Contains(out, "CRM people") || !strings.Contains(out, "webhook") {
		t.Fatalf("subscriptions:\n%s", out)
	}
	var mate struct{ Id string }
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "user", "create", "--login", "mate1", "--name", "First Mate",
		"--org", org.Id)), &mate); err != nil || mate.Id == "" {
		t.Fatalf("user create: %v", err)
	}
	h.mustRun("user", "create", "--login", "cook1", "--name", "Cook", "--org", org.Id)
	wait("the people created to reach the webhook", func() bool { return len(seen()) == 2 })

	out = h.mustRun("sync", "resync", "--app", crm, "--org", org.Id)
	if !strings.Contains(out, "deliveries:") || !strings.Contains(out, " 3") { // the org and two people
		t.Fatalf("resync:\n%s", out)
	}
	wait("the resync", func() bool { return len(seen()) == 4 })

	out = h.mustRun("sync", "status")
	if !strings.Contains(out, "SUBSCRIPTION") || !strings.Contains(out, "CRM people") {
		t.Fatalf("status shows no subscription:\n%s", out)
	}
	// the org's creation may have been projected before or after the
	// subscription existed: count what was delivered
	var dl struct {
		Deliveries []struct{ Status, Kind string }
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "sync", "deliveries", "--app", crm, "--all")), &dl); err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, d := range dl.Deliveries {
		if d.Status == "delivered" {
			delivered++
		}
	}
	if delivered < 5 || delivered != len(dl.Deliveries) {
		t.Fatalf("deliveries: %+v", dl)
	}
	want := strconv.Itoa(delivered)
	if out := h.mustRun("sync", "retry", "--app", crm); !strings.Contains(out, "retried:") {
		t.Fatalf("retry:\n%s", out)
	}
	out = h.mustRun("sync", "report", "--app", crm)
	if !strings.Contains(out, "DELIVERED") || !strings.Contains(out, crm) {
		t.Fatalf("report:\n%s", out)
	}
	dir := t.TempDir()
	h.mustRun("sync", "report", "--app", crm, "--format", "csv", "--out", filepath.Join(dir, "r.csv"))
	f, err := os.Open(filepath.Join(dir, "r.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 2 || recs[0][2] != "delivered" || recs[1][1] != crm || recs[1][2] != want {
		t.Fatalf("csv report %v %v", recs, err)
	}
	h.mustRun("sync", "report", "--app", crm, "--format", "xlsx", "--out", filepath.Join(dir, "r.xlsx"))
	x, err := excelize.OpenFile(filepath.Join(dir, "r.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := x.GetRows("deliveries")
	x.Close()
	if err != nil || len(rows) != 2 || rows[1][1] != crm || rows[1][2] != want {
		t.Fatalf("xlsx report %v %v", rows, err)
	}
	if code, _, stderr := h.run("sync", "report", "--format", "pdf", "--out", "x"); code == 0 || !strings.Contains(stderr, "csv or xlsx") {
		t.Fatalf("report --format pdf: exit %d %s", code, stderr)
	}
	if code, _, stderr := h.run("sync", "subscribe", "--app", crm, "--name", "bad", "--transport", "ftp", "--endpoint", "ftp://x",
		"--org", org.Id); code == 0 || !strings.Contains(stderr, "transport") {
		t.Fatalf("subscribe with a bad transport: exit %d %s", code, stderr)
	}
	// A time of day for the batches (design 004 2.1.5.3: the timer sets the
	// time and the period), in a zone; refused when it is not one.
	var listed struct {
		Subscriptions []struct{ Id string } `json:"subscriptions"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "sync", "subscriptions", "--app", crm)), &listed); err != nil ||
		len(listed.Subscriptions) == 0 {
		t.Fatalf("subscriptions: %v", err)
	}
	subID := listed.Subscriptions[0].Id
	if out := h.mustRun("sync", "subscription-update", subID, "--batch-at", "02:30", "--time-zone", "Asia/Shanghai",
		"--batch-every", "168h"); !strings.Contains(out, "02:30 Asia/Shanghai") || !strings.Contains(out, "168h") {
		t.Fatalf("batch at:\n%s", out)
	}
	for _, bad := range [][]string{{"--batch-at", "2:30"}, {"--batch-at", "02:30", "--batch-every", "36h"}, {"--time-zone", "Mars/Olympus"}} {
		if code, _, stderr := h.run(append([]string{"sync", "subscription-update", subID}, bad...)...); code == 0 ||
			!strings.Contains(stderr, "batch_") {
			t.Fatalf("%v: exit %d %s", bad, code, stderr)
		}
	}
	if out := h.mustRun("sync", "subscription-update", subID, "--batch-at", "", "--batch-every", "0s"); strings.Contains(out, "Asia/Shanghai") {
		t.Fatalf("batch at cleared:\n%s", out)
	}

	// REST through the gateway: the same listing, and a refusal without a token.
	token := strings.TrimSpace(readFile(t, filepath.Join(h.cfg, "token")))
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.HTTPAddr()+"/v1/sync/subscriptions?app="+crm, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "CRM people") || strings.Contains(string(body), "whsec") {
		t.Fatalf("REST subscriptions: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + a.HTTPAddr() + "/v1/sync/reports/deliveries?app=" + crm)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("REST report without a token: %d", resp.StatusCode)
	}

	// people imported in bulk (their batched change carries ids only) are
	// read from identity and reach the webhook once each
	const imported = 300
	var file strings.Builder
	file.WriteString("login_name,display_name,org_code\n")
	for i := range imported {
		fmt.Fprintf(&file, "imp%03d,Imported %d,ships\n", i, i)
	}
	path := filepath.Join(dir, "people.csv")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h.mustRun("import", "users", path)
	importedSeen := func() map[string]int {
		n := map[string]int{}
		for _, l := range seen() {
			if strings.HasPrefix(l, "upsert imp") {
				n[l]++
			}
		}
		return n
	}
	wait("the imported people to reach the webhook", func() bool { return len(importedSeen()) == imported })
	for l, n := range importedSeen() {
		if n != 1 {
			t.Fatalf("%s delivered %d times", l, n)
		}
	}

	// sync subscription-update: what the flags name changes, the rest
	// (the secret included) stays; the engine acts on the edit at once.
	var subs struct {
		Subscriptions []struct{ Id string } `json:"subscriptions"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "sync", "subscriptions", "--app", crm)), &subs); err != nil ||
		len(subs.Subscriptions) != 1 {
		t.Fatalf("subscriptions: %v %+v", err, subs)
	}
	id := subs.Subscriptions[0].Id
	// over REST, a body naming another subscription is refused, not
	// answered for the path's (review sec12 #7)
	put, _ := http.NewRequest(http.MethodPut, "http://"+a.HTTPAddr()+"/v1/sync/subscriptions/"+id,
		strings.NewReader(`{"id":"sub-other","name":"Renamed"}`))
	put.Header.Set("Authorization", "Bearer "+token)
	put.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(put); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "differs from the path") {
			t.Fatalf("REST update naming another subscription: %d %s", resp.StatusCode, b)
		}
	}
	// over gRPC (no edge in front) the server refuses it itself (review
	// sec13 L4)
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = syncv1.NewSyncProvisioningServiceClient(conn).UpdateSubscription(
		metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token),
		&syncv1.UpdateSubscriptionRequest{Id: id, Subscription: &syncv1.Subscription{Id: "sub-other", Name: "Renamed"}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "subscription.id differs from id") {
		t.Fatalf("gRPC update naming another subscription: %v", err)
	}
	// org resend is for centres: a single centre says so
	if code, _, errs := h.run("org", "resend", org.Id); code == 0 || !strings.Contains(errs, "single centre") {
		t.Fatalf("org resend at a single centre: exit %d, %q", code, errs)
	}
	out = h.mustRun("sync", "subscription-update", id, "--name", "CRM crew", "--on-leave", "disable")
	if !strings.Contains(out, "CRM crew") || !strings.Contains(out, "on leave:") || !strings.Contains(out, "disable") ||
		!strings.Contains(out, "orgs "+org.Id) || !strings.Contains(out, "set") {
		t.Fatalf("subscription-update output:\n%s", out)
	}
	shore := struct{ Id string }{}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "org", "create", "--code", "shore", "--name", "Shore",
		"--parent", roots.Orgs[0].Id)), &shore); err != nil {
		t.Fatal(err)
	}
	count := func(line string) int {
		n := 0
		for _, l := range seen() {
			if l == line {
				n++
			}
		}
		return n
	}
	h.mustRun("user", "update", mate.Id, "--org", shore.Id)
	wait("the person who left the org to be disabled (on_leave=disable)", func() bool { return count("disable mate1") == 1 })
	upserts := count("upsert mate1")
	var edited struct {
		Name      string            `json:"name"`
		HasSecret bool              `json:"has_secret"`
		Settings  map[string]string `json:"settings"`
		Selection struct {
			Orgs []string `json:"orgs"`
		} `json:"selection"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "sync", "subscription-update", id, "--org", shore.Id,
		"--setting", "on_leave=")), &edited); err != nil {
		t.Fatal(err)
	}
	if edited.Name != "CRM crew" || !edited.HasSecret || edited.Settings["on_leave"] != "" ||
		len(edited.Selection.Orgs) != 1 || edited.Selection.Orgs[0] != shore.Id {
		t.Fatalf("subscription after the second edit: %+v", edited)
	}
	wait("the person inside the new selection to be delivered", func() bool { return count("upsert mate1") > upserts })
	if code, _, stderr := h.run("sync", "subscription-update", id, "--on-leave", "sometimes"); code == 0 || !strings.Contains(stderr, "on_leave") {
		t.Fatalf("subscription-update --on-leave sometimes: exit %d %s", code, stderr)
	}
	if code, _, stderr := h.run("sync", "subscription-update", id); code == 0 || !strings.Contains(stderr, "nothing to change") {
		t.Fatalf("subscription-update without flags: exit %d %s", code, stderr)
	}
	if code, _, stderr := h.run("sync", "subscription-update", "no-such-subscription", "--name", "x"); code == 0 || stderr == "" {
		t.Fatalf("subscription-update of an unknown subscription: exit %d %s", code, stderr)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
