package ctl

import (
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// keysCommands are the "keys" noun: data keys of the identity service,
// and the published keys of UIAS's signed answers.
func keysCommands() map[string]command {
	return map[string]command{
		"status":           keysStatusCmd(),
		"rotate":           keysRotateCmd(),
		"reencrypt":        keysReencryptCmd(),
		"response-signing": keysResponseSigningCmd(),
	}
}

func keysResponseSigningCmd() command {
	return command{
		usage: "",
		help: "Lists the public keys UIAS signs its answers to signed calls with (Ed25519, and SM2 with\n" +
			"identity.response_signing_sm2; the active key of each first), as GET /v1/keys/response-signing\n" +
			"publishes them. No login needed. With -o json the key set (JWKS-like: kid, kty OKP, crv Ed25519,\n" +
			"x; or kty EC, crv SM2, x, y) to give integrators, who check answers with it\n" +
			"(reqsig.ParseResponseKeys; docs/integrators.md, Signed answers).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				s, err := a.dial()
				if err != nil {
					return err
				}
				defer s.close()
				ks, err := identityv1.NewResponseKeyServiceClient(s.conn).ListResponseSigningKeys(s.ctx, &identityv1.ListResponseSigningKeysRequest{})
				if err != nil {
					return s.wrap(err)
				}
				return a.output(ks, func(tw *tabwriter.Writer) {
					row(tw, "KID", "ALGORITHM", "ACTIVE", "PUBLIC KEY (base64url x; SM2: x,y)")
					for _, k := range ks.GetKeys() {
						pub := k.GetX()
						if k.GetY() != "" {
							pub += "," + k.GetY()
						}
						row(tw, k.GetKid(), k.GetCrv(), yesNo(k.GetActive()), pub)
					}
				})
			}
		},
	}
}

func keysStatusCmd() command {
	return command{
		usage: "",
		help:  "Lists the data keys and counts the stored values still on an older key than the active one.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					st, err := identityv1.NewKeyServiceClient(s.conn).GetKeyStatus(s.ctx, &identityv1.GetKeyStatusRequest{})
					if err != nil {
						return err
					}
					return a.output(st, func(tw *tabwriter.Writer) { keyStatusTable(tw, st) })
				})
			}
		},
	}
}

func keysRotateCmd() command {
	return command{
		usage: "[--no-reencrypt] [--batch N]",
		help: "Makes a new data key the active one (new writes use it; older keys still decrypt) and\n" +
			"re-wraps the data keys with the key ring's active master key, then re-encrypts the stored\n" +
			"values with the new key in batches (unless --no-reencrypt; \"keys reencrypt\" resumes).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			noRe := fs.Bool("no-reencrypt", false, "only rotate; leave stored values on their keys")
			batch := fs.Int("batch", 0, "users per re-encrypt call (0: the server's default, 200)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if *batch < 0 {
					return usagef("--batch must not be negative")
				}
				return a.withSession(func(s *session) error {
					st, err := identityv1.NewKeyServiceClient(s.conn).RotateKeys(s.ctx, &identityv1.RotateKeysRequest{})
					if err != nil {
						return err
					}
					if *noRe {
						return a.output(st, func(tw *tabwriter.Writer) { keyStatusTable(tw, st) })
					}
					if a.g.output != "json" {
						fmt.Fprintf(a.stdout, "new active data key: %s\n", st.GetActiveKeyId())
					}
					return a.reencrypt(s, *batch)
				})
			}
		},
	}
}

func keysReencryptCmd() command {
	return command{
		usage: "[--batch N]",
		help: "Re-encrypts stored values still on an older data key with the active one, batch by batch,\n" +
			"until none remain (or no batch makes progress: values that do not decrypt are reported).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			batch := fs.Int("batch", 0, "users per call (0: the server's default, 200)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if *batch < 0 {
					return usagef("--batch must not be negative")
				}
				return a.withSession(func(s *session) error { return a.reencrypt(s, *batch) })
			}
		},
	}
}

// reencrypt calls ReencryptData until nothing remains or a batch moves
// nothing, and prints the totals.
func (a *app) reencrypt(s *session, batch int) error {
	client := identityv1.NewKeyServiceClient(s.conn)
	total := &identityv1.ReencryptDataResponse{}
	for {
		r, err := client.ReencryptData(s.ctx, &identityv1.ReencryptDataRequest{BatchSize: int32(batch)})
		if err != nil {
			return err
		}
		total.ActiveKeyId, total.Remaining = r.GetActiveKeyId(), r.GetRemaining()
		total.Reencrypted += r.GetReencrypted()
		total.Failed += r.GetFailed()
		total.Kept += r.GetKept()
		if r.GetRemaining() == 0 || r.GetReencrypted() == 0 {
			break
		}
	}
	if err := a.output(total, func(tw *tabwriter.Writer) {
		fields(tw, "active key", total.GetActiveKeyId(),
			"re-encrypted (users, fingerprint templates, authenticator apps)", strconv.FormatInt(total.GetReencrypted(), 10),
			"failed", strconv.FormatInt(total.GetFailed(), 10),
			"kept (other centres' people, their keys)", strconv.FormatInt(total.GetKept(), 10),
			"values on older keys", strconv.FormatInt(total.GetRemaining(), 10))
	}); err != nil {
		return err
	}
	if total.GetFailed() > 0 {
		return fmt.Errorf("%d users' values or fingerprint templates do not decrypt with the data keys; they were left unchanged (see the identity log)", total.GetFailed())
	}
	return nil
}

func keyStatusTable(tw *tabwriter.Writer, st *identityv1.KeyStatus) {
	fields(tw, "active data key", st.GetActiveKeyId(), "active master key", st.GetActiveMasterKeyId(),
		"new data keys", st.GetActiveMasterKeyAlgorithm(),
		"values on older keys", strconv.FormatInt(st.GetValuesOnOlderKeys(), 10))
	row(tw, "")
	row(tw, "KEY", "MASTER KEY", "CREATED", "ACTIVE", "ALGORITHM", "MASTER ALGORITHM")
	for _, k := range st.GetKeys() {
		row(tw, k.GetId(), k.GetMasterKeyId(), ts(k.GetCreatedAt()), yesNo(k.GetActive()), k.GetAlgorithm(), k.GetMasterKeyAlgorithm())
	}
}
