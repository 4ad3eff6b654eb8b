package ctl

import (
	"flag"
	"text/tabwriter"

	"google.golang.org/protobuf/proto"
)

// Helpers for the usual shape of a verb: check the positional arguments
// and flags, make one call in an administrator session (withSession), and
// print the answer as a table (or as JSON with -o json). A noun's file
// builds its commands from these; a verb that does more (several calls,
// its own exit status) keeps writing its command by hand.

// prepared is what a verb's setup returns: it checks the positional
// arguments (already counted) and the flags, returning a usage error before
// anything is dialled, and then the call to make in the session.
type prepared[T proto.Message] func(args []string) (func(s *session) (T, error), error)

// verb is a command with flags: setup declares them and returns prepare
// (a gives it the environment and standard input, e.g. a.readSecretLine);
// argNames name the positional arguments (wantArgs); table prints the
// answer.
func verb[T proto.Message](usage, help string, argNames []string, setup func(a *app, fs *flag.FlagSet) prepared[T],
	table func(tw *tabwriter.Writer, x T)) command {
	return command{
		usage: usage,
		help:  help,
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			prepare := setup(a, fs)
			return func(args []string) error {
				if err := wantArgs(args, argNames...); err != nil {
					return err
				}
				do, err := prepare(args)
				if err != nil {
					return err
				}
				return sessionCall(a, do, table)
			}
		},
	}
}

// idVerb is a command whose only argument is an ID, passed to one call.
func idVerb[T proto.Message](do func(s *session, id string) (T, error), table func(tw *tabwriter.Writer, x T)) command {
	return verb("ID", "", []string{"ID"}, func(*app, *flag.FlagSet) prepared[T] {
		return func(args []string) (func(s *session) (T, error), error) {
			return func(s *session) (T, error) { return do(s, args[0]) }, nil
		}
	}, table)
}

// sessionCall makes one call in an administrator session and prints its
// answer with table (JSON with -o json).
func sessionCall[T proto.Message](a *app, do func(s *session) (T, error), table func(tw *tabwriter.Writer, x T)) error {
	return a.withSession(func(s *session) error {
		x, err := do(s)
		if err != nil {
			return err
		}
		return a.output(x, func(tw *tabwriter.Writer) { table(tw, x) })
	})
}

// pageFetch gets one page of a listing: its items and the next page token.
type pageFetch[T any] func(s *session, pageSize int32, token string) ([]T, string, error)

// listVerb is a listing: filters are its usage (the paging flags
// --page-size, --page-token and --all are added to it and to the flags),
// maxPage is the largest --page-size the server answers; setup declares
// the filter flags and returns the page fetcher; wrap makes
// the response message -o json prints; rows prints the table. A hint on
// standard error tells a table reader when more pages exist.
func listVerb[T any](filters string, maxPage int, setup func(a *app, fs *flag.FlagSet) pageFetch[T],
	wrap func(items []T, next string) proto.Message, rows func(tw *tabwriter.Writer, items []T)) command {
	usage := "[--page-size N] [--page-token T] [--all]"
	if filters != "" {
		usage = filters + " " + usage
	}
	return command{
		usage: usage,
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			fetch := setup(a, fs)
			lo := addListFlags(fs, maxPage)
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := lo.check(); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					items, next, err := paginate(lo, func(tok string) ([]T, string, error) {
						return fetch(s, int32(lo.pageSize), tok)
					})
					if err != nil {
						return err
					}
					a.moreHint(next)
					return a.output(wrap(items, next), func(tw *tabwriter.Writer) { rows(tw, items) })
				})
			}
		},
	}
}
