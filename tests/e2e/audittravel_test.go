package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit/analytics/geotest"
	auditcomponent "github.com/uias/uias/services/audit/component"
)

// Impossible travel end to end, through real logins: the administrator
// logs in at the REST edge from Beijing, then at once from Paris (the edge
// believes X-Forwarded-For from its trusted proxy 127.0.0.0/8; a city
// database the test writes places the addresses). The alert goes out on
// NATS naming both places, and the security auditor's ImpossibleTravel
// question finds the same travel in the stored log.
func TestImpossibleTravelThroughTheEdge(t *testing.T) {
	db := filepath.Join(t.TempDir(), "city.mmdb")
	if err := geotest.WriteCityDB(db); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	ac := auditcomponent.Settings(&cfg)
	ac.BatchWait = 20 * time.Millisecond
	ac.Analytics.GeoIPDB = db
	e := start(t, cfg)
	nc, err := e.app.ConnectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("uias.alerts.audit.impossible_travel")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{geotest.BeijingIP, geotest.ParisIP} {
		code, out, _ := e.rest(http.MethodPost, "/v1/admin/login", map[string]string{"X-Forwarded-For": ip},
			map[string]string{"login_name": "admin", "password": adminPassword})
		if code != http.StatusOK || out["token"] == "" {
			t.Fatalf("admin login from %s: %d %v", ip, code, out)
		}
	}
	e.login()
	adminID := e.adminID(t)

	m, err := sub.NextMsg(60 * time.Second)
	if err != nil {
		t.Fatalf("no impossible travel alert on NATS: %v", err)
	}
	var alert struct {
		Kind   string `json:"kind"`
		UserID string `json:"user_id"`
		API    string `json:"api"`
		Travel struct {
			From struct {
				City     string `json:"city"`
				ClientIP string `json:"client_ip"`
			} `json:"from"`
			To struct {
				City     string `json:"city"`
				ClientIP string `json:"client_ip"`
			} `json:"to"`
			DistanceKM float64 `json:"distance_km"`
		} `json:"travel"`
	}
	if err := json.Unmarshal(m.Data, &alert); err != nil || alert.Kind != "impossible_travel" || alert.UserID != adminID ||
		alert.API != "admin.login" || alert.Travel.From.City != "Beijing" || alert.Travel.To.City != "Paris" ||
		alert.Travel.From.ClientIP != geotest.BeijingIP || alert.Travel.To.ClientIP != geotest.ParisIP ||
		alert.Travel.DistanceKM < 8000 || alert.Travel.DistanceKM > 8500 {
		t.Fatalf("alert %s: %v", m.Data, err)
	}

	audTok := e.grantedAdmin(t, "auditor-travel", "security_auditor")
	aud := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+audTok)
	c := auditv1.NewAuditAnalyticsServiceClient(e.conn)
	eventually(t, "the travel in the stored log", func() bool {
		res, err := c.ImpossibleTravel(aud, &auditv1.ImpossibleTravelRequest{})
		if err != nil || len(res.GetTravels()) != 1 {
			return false
		}
		tr := res.GetTravels()[0]
		return tr.GetUserId() == adminID && tr.GetFrom().GetCity() == "Beijing" && tr.GetTo().GetCity() == "Paris" &&
			tr.GetFrom().GetClientIp() == geotest.BeijingIP
	})
}
