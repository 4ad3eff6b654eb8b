package sqlstore

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// txRunners are the Store's methods that run a function in a write
// transaction: during an import, the first two hold the import
// connection's turn while it runs.
var txRunners = []string{"writeTx", "importTx", "inTx"}

// nestedWrites finds, in the Store's methods of files, a function run in
// a write transaction (an argument of a txRunners call) that writes again
// through the store: directly (a txRunners call, the DB's InTx or
// BeginTx) or through a method that does. Nested, such a write would wait
// for the import connection's turn its own transaction holds (forever),
// or, on the pool, for SQLite's write lock (busy_timeout). Calls are
// followed by name through the methods' receivers (s.m(...)).
func nestedWrites(files []*ast.File) []string {
	type method struct {
		recv string
		body *ast.BlockStmt
	}
	methods := map[string]method{}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 || len(fd.Recv.List[0].Names) != 1 || fd.Body == nil {
				continue
			}
			if st, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := st.X.(*ast.Ident); ok && id.Name == "Store" {
					methods[fd.Name.Name] = method{fd.Recv.List[0].Names[0].Name, fd.Body}
				}
			}
		}
	}
	// calls lists what node calls on recv: method names, and "db.InTx" /
	// "db.BeginTx" for the DB's.
	calls := func(n ast.Node, recv string) []string {
		var out []string
		ast.Inspect(n, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch x := sel.X.(type) {
			case *ast.Ident:
				if x.Name == recv {
					out = append(out, sel.Sel.Name)
				}
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Name == recv && x.Sel.Name == "db" &&
					(sel.Sel.Name == "InTx" || sel.Sel.Name == "BeginTx") {
					out = append(out, "db."+sel.Sel.Name)
				}
			}
			return true
		})
		return out
	}
	writes := map[string]bool{"db.InTx": true, "db.BeginTx": true}
	for _, r := range txRunners {
		writes[r] = true
	}
	for changed := true; changed; {
		changed = false
		for name, m := range methods {
			if writes[name] {
				continue
			}
			for _, c := range calls(m.body, m.recv) {
				if writes[c] {
					writes[name], changed = true, true
					break
				}
			}
		}
	}
	var found []string
	for name, m := range methods {
		if slices.Contains(txRunners, name) {
			continue // the runners themselves
		}
		ast.Inspect(m.body, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok || !slices.Contains(txRunners, sel.Sel.Name) {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != m.recv {
				return true
			}
			for _, a := range c.Args {
				if fl, ok := a.(*ast.FuncLit); ok {
					for _, w := range calls(fl.Body, m.recv) {
						if writes[w] {
							found = append(found, name+" writes through "+w+" inside "+sel.Sel.Name)
						}
					}
				}
			}
			return true
		})
	}
	slices.Sort(found)
	return found
}

// No function run in a write transaction writes again through the store
// (see nestedWrites: during an import that would deadlock on the import
// connection's turn); and the check finds one, direct or through a
// helper.
func TestNoNestedWrites(t *testing.T) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, p, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) < 10 {
		t.Fatalf("only %d files parsed", len(files))
	}
	if found := nestedWrites(files); len(found) > 0 {
		t.Fatalf("writes inside writes:\n%s", strings.Join(found, "\n"))
	}

	planted, err := parser.ParseFile(fset, "planted.go", `package sqlstore
func (s *Store) AppendEvents(ctx context.Context) error {
	return s.inTx(ctx, "", "", func(tx *sql.Tx) error { return nil })
}
func (s *Store) helper(ctx context.Context) error { return s.AppendEvents(ctx) }
func (x *Store) Direct(ctx context.Context) error {
	return x.writeTx(ctx, func(tx *sql.Tx) error { return x.AppendEvents(ctx) })
}
func (s *Store) Helped(ctx context.Context) error {
	return s.inTx(ctx, "", "", func(tx *sql.Tx) error { return s.helper(ctx) })
}
func (s *Store) Pool(ctx context.Context) error {
	return s.importTx(ctx, func(tx *sql.Tx) error { return s.db.InTx(ctx, nil) })
}
func (s *Store) Fine(ctx context.Context) error {
	return s.inTx(ctx, "", "", func(tx *sql.Tx) error { return s.addEvents(ctx, tx, nil) })
}
func (s *Store) addEvents(ctx context.Context, tx *sql.Tx, evs []int) error { return nil }
func (s *Store) inTx(ctx context.Context, op, what string, fn func(*sql.Tx) error) error { return s.writeTx(ctx, fn) }
func (s *Store) writeTx(ctx context.Context, fn func(*sql.Tx) error) error { return s.db.InTx(ctx, fn) }
`, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Direct writes through AppendEvents inside writeTx",
		"Helped writes through helper inside inTx",
		"Pool writes through db.InTx inside importTx",
	}
	if got := nestedWrites([]*ast.File{planted}); !slices.Equal(got, want) {
		t.Fatalf("planted nested writes found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
