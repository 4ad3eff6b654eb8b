package ctl

import (
	"flag"
	"strconv"
	"strings"
	"time"
)

// maxDays bounds a days flag: the longest App_Secret lifetime the server
// accepts (identity.MaxSecretLifetime, 10 years); a longer one would only
// be refused by the server.
const maxDays = 3650

// days is a duration flag that also takes whole days ("30d"), as secret
// lifetimes are counted, up to maxDays; set tells whether it was given.
type days struct {
	d   time.Duration
	set bool
}

func (v *days) String() string {
	if v == nil || !v.set {
		return ""
	}
	return v.d.String()
}

func (v *days) Set(s string) error {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.ParseInt(n, 10, 64)
		if err != nil || d < 0 || d > maxDays {
			return usagef("%q is not a number of days (like 30d) up to %dd", s, maxDays)
		}
		v.d, v.set = time.Duration(d)*24*time.Hour, true
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return usagef("%q is not a duration (like 90d, 720h or 0)", s)
	}
	if d < 0 {
		return usagef("%q is negative", s)
	}
	if d > maxDays*24*time.Hour {
		return usagef("%q is longer than %dd", s, maxDays)
	}
	v.d, v.set = d, true
	return nil
}

// seconds is the duration in whole seconds (rounded up: a lifetime of a
// fraction of a second is not 0, the server default).
func (v *days) seconds() int64 {
	return int64((v.d + time.Second - 1) / time.Second)
}

// fmtDays shows a number of seconds as days when it is whole days.
func fmtDays(s int64) string {
	if s%86400 == 0 {
		return strconv.FormatInt(s/86400, 10) + "d"
	}
	return (time.Duration(s) * time.Second).String()
}

// sinceFlag defines --since on fs: a duration back from now, in days
// ("30d") or a Go duration ("24h"); the value is read through the
// returned pointer.
func sinceFlag(fs *flag.FlagSet, what string) *time.Duration {
	v := &days{}
	fs.Var(v, "since", what+" of the last `DURATION` (e.g. 24h or 30d)")
	return &v.d
}
