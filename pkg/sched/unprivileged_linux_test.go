//go:build linux

package sched_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uias/uias/pkg/sched"
)

// childMode tells a re-executed test binary what to do (see
// TestBatchInRestrictedContainer).
const childMode = "UIAS_SCHED_TEST_CHILD"

// TestBatchInRestrictedContainer runs Batch as the Helm chart runs uias: a
// non-root user (65532) without any capability and with no_new_privs
// (allowPrivilegeEscalation: false). SCHED_BATCH is not a real-time policy,
// so it needs no privilege. The seccomp profile RuntimeDefault of
// containerd and CRI-O (the moby default profile) allows sched_getattr and
// sched_setattr; under a profile that forbids them Batch fails with an
// error the identity service logs, and the process runs on as started.
func TestBatchInRestrictedContainer(t *testing.T) {
	switch os.Getenv(childMode) {
	case "allowed", "forbidden":
		restrictedChild(os.Getenv(childMode))
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the child process as another user")
	}
	// The test binary sits in a directory only root may enter: copy it.
	dir, err := os.MkdirTemp("", "uias-sched-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sched.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"allowed", "forbidden"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(bin, "-test.run=^TestBatchInRestrictedContainer$", "-test.count=1")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), childMode+"="+mode)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			want := map[string]string{"allowed": "RESULT batch threads=", "forbidden": "RESULT refused: sched: "}[mode]
			if !strings.Contains(string(out), want) {
				t.Fatalf("child output lacks %q:\n%s", want, out)
			}
			t.Logf("%s", strings.TrimSpace(string(out)))
		})
	}
}

// restrictedChild drops what a restricted container has not, calls Batch
// and prints the result.
func restrictedChild(mode string) {
	fail := func(msg string, err error) {
		os.Stdout.WriteString("child: " + msg + ": " + err.Error() + "\n")
		os.Exit(3)
	}
	if os.Geteuid() == 0 {
		fail("still root", syscall.EPERM)
	}
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		fail("capget", err)
	}
	if caps[0].Effective != 0 || caps[1].Effective != 0 || caps[0].Permitted != 0 {
		fail("capabilities left", syscall.EPERM)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail("no_new_privs", err)
	}
	if mode == "forbidden" {
		// A seccomp filter on every thread: sched_setattr fails with EPERM.
		filter := []unix.SockFilter{
			{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
			{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_SCHED_SETATTR},
			{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
			{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		}
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
			unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog))); errno != 0 {
			fail("seccomp", errno)
		}
	}
	n, err := sched.Batch()
	if err != nil {
		os.Stdout.WriteString("RESULT refused: " + err.Error() + "\n")
		os.Exit(0)
	}
	os.Stdout.WriteString("RESULT batch threads=" + strconv.Itoa(n) + "\n")
	os.Exit(0)
}
