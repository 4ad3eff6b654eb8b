package log

import (
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"
)

// keepEnds returns s with all but the first head and last tail runes replaced
// by '*'. Strings with fewer than minLen runes are masked entirely, so short
// values never reveal most of their content.
func keepEnds(s string, head, tail, minLen int) string {
	if s == "" {
		return ""
	}
	r := []rune(s)
	n := len(r)
	if n < minLen || n <= head+tail {
		return strings.Repeat("*", n)
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(string(r[:head]))
	b.WriteString(strings.Repeat("*", n-head-tail))
	b.WriteString(string(r[n-tail:]))
	return b.String()
}

// MaskIDNumber keeps the first 3 and last 2 characters of an ID number
// (110101199003071234 -> 110*************34). Values shorter than 8 characters
// are masked entirely; the empty string stays empty.
func MaskIDNumber(s string) string { return keepEnds(s, 3, 2, 8) }

// MaskPhone keeps the first 3 and last 4 characters of a phone number
// (13812345678 -> 138****5678). Values shorter than 9 characters are masked
// entirely; the empty string stays empty.
func MaskPhone(s string) string { return keepEnds(s, 3, 4, 9) }

// MaskSecret returns "****" for any non-empty value, revealing neither content
// nor length. The empty string stays empty.
func MaskSecret(s string) string {
	if s == "" {
		return ""
	}
	return "****"
}

// MaskEmail keeps the first character of the local part and the domain
// (alice@example.com -> a***@example.com). A value without '@' is masked
// as "***".
func MaskEmail(s string) string {
	if s == "" {
		return ""
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "***"
	}
	local, domain := s[:at], s[at+1:]
	if local == "" {
		return "***@" + domain
	}
	r, _ := utf8.DecodeRuneInString(local)
	return string(r) + "***@" + domain
}

// MaskName keeps the first character of a person's name and replaces
// every other character by '*' (张三 -> 张*, 欧阳娜娜 -> 欧***, Alice Smith
// -> A**********): the family name of a Chinese name shows at most its
// first character, and the length of the name is all that shows of the
// rest. Surrounding spaces are dropped; a one-character name is "*"; the
// empty string stays empty.
func MaskName(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	r := []rune(s)
	if len(r) == 1 {
		return "*"
	}
	return string(r[0]) + strings.Repeat("*", len(r)-1)
}

// IDNumber is a zap field whose value is masked with MaskIDNumber.
func IDNumber(key, v string) zap.Field { return zap.String(key, MaskIDNumber(v)) }

// Phone is a zap field whose value is masked with MaskPhone.
func Phone(key, v string) zap.Field { return zap.String(key, MaskPhone(v)) }

// Secret is a zap field whose value is masked with MaskSecret.
func Secret(key, v string) zap.Field { return zap.String(key, MaskSecret(v)) }

// Email is a zap field whose value is masked with MaskEmail.
func Email(key, v string) zap.Field { return zap.String(key, MaskEmail(v)) }

// MaskText masks every run of ASCII digits in free text that looks like a
// resident ID number (18 characters: 17 digits plus a digit or X; or the old
// 15-digit form) or a mainland mobile number (11 digits starting with 1,
// optionally prefixed by country code 86). Other text is returned unchanged.
// It errs on the side of masking: any digit run of those shapes is masked,
// whatever surrounds it, except inside a UIAS identifier (pkg/ids: 32
// lowercase hex characters, at least one a letter, standing on its own):
// one of those holds a run of 15 digits now and then (about one id in 20
// has a run of 11 or more), and masking it made the id unusable (an audit
// record's subject "user:<id>" no longer named the person).
func MaskText(s string) string {
	var b strings.Builder
	last := 0 // s[:last] has been copied to b (only once something was masked)
	i := 0
	for i < len(s) {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		end := j
		if end, ok := hexIDEnd(s, i, j); ok {
			i = end // the id's other digits are inside it too
			continue
		}
		if j-i == 17 && j < len(s) && (s[j] == 'X' || s[j] == 'x') {
			end = j + 1
		}
		run := s[i:end]
		var masked string
		switch {
		case len(run) == 18 || len(run) == 15:
			masked = MaskIDNumber(run)
		case len(run) == 11 && run[0] == '1':
			masked = MaskPhone(run)
		case len(run) == 13 && run[:3] == "861":
			masked = "86" + MaskPhone(run[2:])
		}
		if masked != "" {
			if last == 0 {
				b.Grow(len(s))
			}
			b.WriteString(s[last:i])
			b.WriteString(masked)
			last = end
		}
		i = end
	}
	if b.Len() == 0 && last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// hexIDEnd reports whether the digits s[i:j] are part of a UIAS
// identifier (a token of exactly 32 lowercase hex characters, at least one
// a letter, with no ASCII letter or digit on either side), and where that
// token ends.
func hexIDEnd(s string, i, j int) (int, bool) {
	a, b := i, j
	for a > 0 && isHexLower(s[a-1]) {
		a--
	}
	for b < len(s) && isHexLower(s[b]) {
		b++
	}
	if b-a != 32 || a > 0 && isAlnum(s[a-1]) || b < len(s) && isAlnum(s[b]) {
		return 0, false
	}
	for k := a; k < b; k++ {
		if !isDigit(s[k]) {
			return b, true
		}
	}
	return 0, false
}

func isHexLower(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' }

func isAlnum(c byte) bool { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'z' }
