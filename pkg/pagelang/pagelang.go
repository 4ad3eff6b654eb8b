// Package pagelang picks the language of UIAS's browser pages (the CAS
// pages, the management console): Simplified Chinese or English.
package pagelang

import (
	"net/http"
	"strings"
)

// The languages.
const (
	Chinese = "zh-CN"
	English = "en"
)

// Of picks the page language of r: ?locale=, then the cookie named cookie
// (the language switch's choice), then Accept-Language (zh* is Simplified
// Chinese), else English.
func Of(r *http.Request, cookie string) string {
	if l := pick(r.URL.Query().Get("locale")); l != "" {
		return l
	}
	if c, err := r.Cookie(cookie); err == nil {
		if l := pick(c.Value); l != "" {
			return l
		}
	}
	for part := range strings.SplitSeq(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(part, ";")
		if l := pick(tag); l != "" {
			return l
		}
	}
	return English
}

// pick maps a language tag to a page language ("" when neither).
func pick(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	switch {
	case strings.HasPrefix(v, "zh"):
		return Chinese
	case strings.HasPrefix(v, "en"):
		return English
	}
	return ""
}
