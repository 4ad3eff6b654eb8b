package ldap_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Review sec30a L5: where Samba cannot be had, the AD tests skip saying
// why (printed without -v too); with UIAS_REQUIRE_SAMBA=1 (CI) they fail.
// The test binary runs one AD test again with a samba.sh that finds
// nothing.
func TestADTestsFailWhenSambaIsRequired(t *testing.T) {
	if os.Getenv("UIAS_TEST_SAMBA_SCRIPT") != "" {
		t.Skip("inside the re-run")
	}
	run := func(require string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSambaADCertificateChecked$", "-test.count=1")
		cmd.Env = append(os.Environ(), "UIAS_TEST_SAMBA_SCRIPT=/bin/false", "UIAS_REQUIRE_SAMBA="+require)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("1")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(out, "--- FAIL: TestSambaADCertificateChecked") ||
		!strings.Contains(out, "UIAS_REQUIRE_SAMBA=1: the AD tests must run here") {
		t.Fatalf("required Samba missing: %v\n%s", err, out)
	}
	out, err = run("")
	if err != nil || !strings.Contains(out, "the Active Directory tests skip: Samba AD is not installed") ||
		!strings.Contains(out, "UIAS_REQUIRE_SAMBA=1 makes this a failure") {
		t.Fatalf("Samba missing, not required: %v\n%s", err, out)
	}
}
