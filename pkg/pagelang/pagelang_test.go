package pagelang_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/uias/uias/pkg/pagelang"
)

// ?locale= wins over the cookie, the cookie over Accept-Language; a tag
// neither Chinese nor English is passed over; nothing: English.
func TestOf(t *testing.T) {
	for _, c := range []struct {
		url, cookie, accept, want string
	}{
		{"/", "", "", "en"},
		{"/?locale=zh-CN", "en", "en", "zh-CN"},
		{"/?locale=fr", "zh", "en", "zh-CN"},
		{"/", "", "fr-FR, zh-TW;q=0.8, en;q=0.5", "zh-CN"},
		{"/", "", "de, EN-gb", "en"},
		{"/", "xx", "fr", "en"},
	} {
		r := httptest.NewRequest(http.MethodGet, c.url, nil)
		if c.cookie != "" {
			r.AddCookie(&http.Cookie{Name: "lang", Value: c.cookie})
		}
		if c.accept != "" {
			r.Header.Set("Accept-Language", c.accept)
		}
		if got := pagelang.Of(r, "lang"); got != c.want {
			t.Errorf("%+v: %s", c, got)
		}
	}
}
