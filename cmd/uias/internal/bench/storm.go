package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// The storm's load client runs in a process of its own, so that the heap
// growth the storm row reports is the server's alone: the 10 N calls in
// flight at once hold their requests, responses and stream buffers on the
// client side too, and in one process that garbage was counted against
// the server (3.61x in the pure-Go build, docs/benchmarks.md).
//
// The parent runs `<exe> bench storm-client` (the uias binary, or a test
// binary whose TestMain passes `bench` to Main when ChildEnv is set) with
// a stormSpec as JSON on standard input; the child runs Waves and writes a
// stormReply as JSON on standard output.

// stormClientArg is the hidden `uias bench` mode of the storm's client.
const stormClientArg = "storm-client"

// stormSpec is what the storm's client process is told.
type stormSpec struct {
	Addr     string        `json:"addr"` // identity's gRPC address
	AppID    string        `json:"app_id"`
	Secret   string        `json:"secret"`
	Callers  int           `json:"callers"`  // simultaneous callers per wave
	Duration time.Duration `json:"duration"` // waves go on this long (at least one)
	Accounts []string      `json:"accounts"` // application accounts to log in, in turn
}

// stormReply is the storm's result as the client process measured it.
type stormReply struct {
	Window    time.Duration   `json:"window"`
	OK        int             `json:"ok"`
	Exhausted int             `json:"exhausted"`
	Failed    int             `json:"failed"`
	FirstErr  string          `json:"first_err,omitempty"`
	Lat       []time.Duration `json:"lat"`
	ExhLat    []time.Duration `json:"exh_lat"`
	Waves     int             `json:"waves"`
}

// runStormClient is the child: it reads a stormSpec from stdin, runs the
// waves and writes a stormReply to stdout.
func runStormClient(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	var spec stormSpec
	if err := json.NewDecoder(stdin).Decode(&spec); err != nil {
		return fmt.Errorf("storm client: read the spec: %w", err)
	}
	if spec.Addr == "" || spec.Callers < 1 {
		return errors.New("storm client: the spec needs an address and at least one caller")
	}
	conn, err := grpc.NewClient(spec.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	e := &env{conn: conn, auth: identityv1.NewAuthServiceClient(conn),
		authCtx:  metadata.AppendToOutgoingContext(context.Background(), grpcx.MetadataAppID, spec.AppID, grpcx.MetadataAppSecret, spec.Secret),
		accounts: spec.Accounts}
	res, waves := Waves(ctx, spec.Callers, spec.Duration, e.callAuthenticate)
	reply := stormReply{Window: res.Window, OK: res.OK, Exhausted: res.Exhausted, Failed: res.Failed,
		Lat: res.Lat, ExhLat: res.ExhLat, Waves: waves}
	if res.FirstErr != nil {
		reply.FirstErr = res.FirstErr.Error()
	}
	return json.NewEncoder(stdout).Encode(reply)
}

// stormInChild runs the storm's waves from a client process of its own
// against e's identity and returns what it measured.
func (e *env) stormInChild(ctx context.Context, callers int, dur time.Duration, log io.Writer) (*Result, int, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	addr := e.app.GRPCAddr()
	spec, err := json.Marshal(stormSpec{Addr: addr, AppID: e.appID, Secret: e.secret, Callers: callers, Duration: dur, Accounts: e.accounts})
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench", stormClientArg)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UIAS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, ChildEnv+"=1")
	cmd.Stdin = bytes.NewReader(spec)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, log
	if err := cmd.Run(); err != nil {
		return nil, 0, fmt.Errorf("storm client process (%s bench %s): %w", exe, stormClientArg, err)
	}
	var reply stormReply
	if err := json.Unmarshal(out.Bytes(), &reply); err != nil {
		return nil, 0, fmt.Errorf("storm client process: its answer: %w", err)
	}
	res := &Result{Window: reply.Window, OK: reply.OK, Exhausted: reply.Exhausted, Failed: reply.Failed,
		Lat: reply.Lat, ExhLat: reply.ExhLat}
	if reply.FirstErr != "" {
		res.FirstErr = errors.New(reply.FirstErr)
	}
	return res, reply.Waves, nil
}
