package cas

import "testing"

// TestServiceURLParameters: the ticket (and, for legacy services, verb
// and st) a service URL already has is replaced, never repeated; the rest
// of the URL is kept as it was written.
func TestServiceURLParameters(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://a.example/app", "https://a.example/app?ticket=ST-1"},
		{"https://a.example/app?", "https://a.example/app?ticket=ST-1"},
		{"https://a.example/app?x=1", "https://a.example/app?x=1&ticket=ST-1"},
		{"https://a.example/app?ticket=ST-old", "https://a.example/app?ticket=ST-1"},
		{"https://a.example/app?ticket", "https://a.example/app?ticket=ST-1"},
		{"https://a.example/app?a=1&ticket=ST-old&b=%2F&ticket=x", "https://a.example/app?a=1&b=%2F&ticket=ST-1"},
		{"https://a.example/app?tick%65t=ST-old&tickets=1", "https://a.example/app?tickets=1&ticket=ST-1"},
		{"https://a.example/app?a=1&", "https://a.example/app?a=1&ticket=ST-1"},
		{"https://a.example/app?%zz=1", "https://a.example/app?%zz=1&ticket=ST-1"},
	} {
		if got := withTicket(tc.in, "ST-1"); got != tc.want {
			t.Errorf("withTicket(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := withoutTicket("https://a.example/app?ticket=ST-old&x=1"); got != "https://a.example/app?x=1" {
		t.Errorf("withoutTicket: %q", got)
	}
	if got := legacyLogin("https://oa.example/sso?verb=x&st=ST-old&k=v", "ST-1"); got != "https://oa.example/sso?k=v&verb=ssoLogin&st=ST-1" {
		t.Errorf("legacyLogin: %q", got)
	}
}
