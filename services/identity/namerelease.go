package identity

import (
	uiaslog "github.com/uias/uias/pkg/log"
)

// What Authenticate answers of the person's name to an application (ADR
// 0037; JR/T 0185-2020 7.2.2: a name fed back to an application through
// the interface is masked or de-identified): App.NameRelease.
const (
	// NameReleaseFull: the name as it is (the default, as before).
	NameReleaseFull = ""
	// NameReleaseMasked: its first character, every other one a '*'
	// (pkg/log MaskName: 张三 -> 张*, 欧阳娜娜 -> 欧***).
	NameReleaseMasked = "masked"
	// NameReleaseOmitted: no name (display_name empty).
	NameReleaseOmitted = "omitted"
)

// knownNameRelease: v is a name release this version knows.
func knownNameRelease(v string) bool {
	switch v {
	case NameReleaseFull, NameReleaseMasked, NameReleaseOmitted:
		return true
	}
	return false
}

// checkNameRelease checks an application's name release.
func checkNameRelease(v string) error {
	if knownNameRelease(v) {
		return nil
	}
	return badField("name_release", "name_release must be full (the name), masked (its first character: 张三 -> 张*) or omitted (none)")
}

// nameReleaseWord names a name release in records and views.
func nameReleaseWord(v string) string {
	if v == NameReleaseFull {
		return "full"
	}
	return v
}

// releasedTo is u as Authenticate and the DirectoryService (GetPerson,
// ListPeople) answer it to an application whose name release is release: a copy with the name masked or left out (u
// itself, which may be shared, when in clear).
func releasedTo(u *User, release string) *User {
	if u == nil || release == NameReleaseFull {
		return u
	}
	cp := *u
	switch release {
	case NameReleaseMasked:
		cp.DisplayName = uiaslog.MaskName(u.DisplayName)
	default:
		cp.DisplayName = ""
	}
	return &cp
}
