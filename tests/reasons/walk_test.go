package reasons

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
)

const apierrPath = "github.com/uias/uias/pkg/apierr"

// codeNames are the apierr code constants by identifier.
var codeNames = map[string]apierr.Code{
	"InvalidArgument": apierr.InvalidArgument, "NotFound": apierr.NotFound, "AlreadyExists": apierr.AlreadyExists,
	"FailedPrecondition": apierr.FailedPrecondition, "PermissionDenied": apierr.PermissionDenied,
	"Unauthenticated": apierr.Unauthenticated, "ResourceExhausted": apierr.ResourceExhausted,
	"Unavailable": apierr.Unavailable, "Internal": apierr.Internal, "DeadlineExceeded": apierr.DeadlineExceeded,
	"Canceled": apierr.Canceled, "Unimplemented": apierr.Unimplemented,
}

// use is one place where a reason reaches an apierr constructor (New, Wrap,
// an Error literal), resolved to the constant values it can take.
type use struct {
	pos    string
	reason string
	code   string // apierr code identifier, "" when not a constant
}

// problem is a constructor call the walker cannot check.
type problem struct {
	pos, msg string
}

// pkgSrc is one package's non-test sources.
type pkgSrc struct {
	dir, path string
	fset      *token.FileSet
	files     []*ast.File
	consts    map[string]constDecl
	funcs     map[string][]*ast.FuncDecl
}

// constDecl is a package-level constant's value expression and its file.
type constDecl struct {
	expr ast.Expr
	file *ast.File
}

// walker finds every reason passed to an apierr constructor in the
// non-test Go sources of a set of modules.
type walker struct {
	modules map[string]string // module path -> dir
	pkgs    map[string]*pkgSrc
}

func newWalker(modules map[string]string) *walker {
	return &walker{modules: modules, pkgs: map[string]*pkgSrc{}}
}

// pkgFor loads the package at import path p (nil when it is not in a walked module).
func (w *walker) pkgFor(p string) *pkgSrc {
	if pk, ok := w.pkgs[p]; ok {
		return pk
	}
	for mod, dir := range w.modules {
		if p == mod || strings.HasPrefix(p, mod+"/") {
			pk := w.load(filepath.Join(dir, strings.TrimPrefix(strings.TrimPrefix(p, mod), "/")), p)
			w.pkgs[p] = pk
			return pk
		}
	}
	w.pkgs[p] = nil
	return nil
}

func (w *walker) load(dir, path string) *pkgSrc {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	pk := &pkgSrc{dir: dir, path: path, fset: token.NewFileSet(), consts: map[string]constDecl{}, funcs: map[string][]*ast.FuncDecl{}}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		fn := filepath.Join(dir, n)
		if generated(fn) {
			continue
		}
		f, err := parser.ParseFile(pk.fset, fn, nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		pk.files = append(pk.files, f)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				pk.funcs[d.Name.Name] = append(pk.funcs[d.Name.Name], d)
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, sp := range d.Specs {
					vs := sp.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							pk.consts[name.Name] = constDecl{vs.Values[i], f}
						}
					}
				}
			}
		}
	}
	if len(pk.files) == 0 {
		return nil
	}
	return pk
}

func generated(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; i < 5 && sc.Scan(); i++ {
		if strings.HasPrefix(sc.Text(), "// Code generated ") {
			return true
		}
	}
	return false
}

// importName is the name under which file f imports path ("" if it does not).
func importName(f *ast.File, path string) string {
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == path {
			if im.Name != nil {
				return im.Name.Name
			}
			return path[strings.LastIndex(path, "/")+1:]
		}
	}
	return ""
}

// site is an expression in its context: the package, file and enclosing
// function (nil at package level).
type site struct {
	pk *pkgSrc
	f  *ast.File
	fn *ast.FuncDecl
}

// walk returns every reason use in the packages of the given import paths.
func (w *walker) walk(paths []string) ([]use, []problem) {
	var uses []use
	var probs []problem
	for _, p := range paths {
		pk := w.pkgFor(p)
		if pk == nil {
			continue
		}
		inApierr := pk.path == apierrPath
		for _, f := range pk.files {
			name := importName(f, apierrPath)
			visit := func(fn *ast.FuncDecl) func(ast.Node) bool {
				return func(n ast.Node) bool {
					s := site{pk, f, fn}
					switch n := n.(type) {
					case *ast.CallExpr:
						ri, ci := -1, -1
						switch fun := n.Fun.(type) {
						case *ast.SelectorExpr:
							if x, ok := fun.X.(*ast.Ident); ok && name != "" && x.Name == name {
								ri, ci = ctorArgs(fun.Sel.Name)
							}
						case *ast.Ident:
							if inApierr {
								ri, ci = ctorArgs(fun.Name)
							}
						}
						if ri >= 0 && ri < len(n.Args) {
							u, pr := w.resolveUse(s, n.Args[ri], n.Args[ci])
							uses, probs = append(uses, u...), append(probs, pr...)
						}
					case *ast.CompositeLit:
						if inApierr || !isErrorType(n.Type, name) {
							return true
						}
						var reason, code ast.Expr
						for _, el := range n.Elts {
							if kv, ok := el.(*ast.KeyValueExpr); ok {
								switch k, _ := kv.Key.(*ast.Ident); k.Name {
								case "Reason":
									reason = kv.Value
								case "Code":
									code = kv.Value
								}
							}
						}
						if reason == nil {
							probs = append(probs, problem{w.pos(s, n), "apierr.Error literal without a Reason"})
							return true
						}
						u, pr := w.resolveUse(s, reason, code)
						uses, probs = append(uses, u...), append(probs, pr...)
					}
					return true
				}
			}
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok {
					if fd.Body != nil {
						ast.Inspect(fd.Body, visit(fd))
					}
					continue
				}
				ast.Inspect(d, visit(nil))
			}
		}
	}
	return uses, probs
}

// ctorArgs returns the argument indexes of reason and code for an apierr
// constructor name, -1 for other functions.
func ctorArgs(fn string) (reason, code int) {
	switch fn {
	case "New":
		return 1, 0
	case "Wrap":
		return 2, 1
	}
	return -1, -1
}

func isErrorType(t ast.Expr, apierrName string) bool {
	if u, ok := t.(*ast.UnaryExpr); ok {
		t = u.X
	}
	sel, ok := t.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && apierrName != "" && x.Name == apierrName && sel.Sel.Name == "Error"
}

func (w *walker) pos(s site, n ast.Node) string {
	p := s.pk.fset.Position(n.Pos())
	return fmt.Sprintf("%s:%d", p.Filename, p.Line)
}

// resolveUse resolves a constructor's reason (and code, when given) to
// constants.
func (w *walker) resolveUse(s site, reasonExpr, codeExpr ast.Expr) ([]use, []problem) {
	reasons, probs := w.resolve(s, reasonExpr, w.stringConst, map[string]bool{})
	code := ""
	if codeExpr != nil {
		if codes, _ := w.resolve(s, codeExpr, w.codeConst, map[string]bool{}); len(codes) == 1 {
			code = codes[0].val
		}
	}
	var uses []use
	for _, r := range reasons {
		uses = append(uses, use{pos: r.pos, reason: r.val, code: code})
	}
	return uses, probs
}

type value struct{ pos, val string }

// terminal interprets an expression that is not a parameter.
type terminal func(s site, e ast.Expr) (string, bool)

func (w *walker) stringConst(s site, e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			v, err := strconv.Unquote(e.Value)
			return v, err == nil
		}
	case *ast.Ident:
		return w.constValue(s.pk, e.Name)
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		if !ok {
			return "", false
		}
		for _, im := range s.f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if importName(s.f, p) == x.Name {
				if pk := w.pkgFor(p); pk != nil {
					return w.constValue(pk, e.Sel.Name)
				}
			}
		}
	}
	return "", false
}

// constValue is the string value of package-level constant name of pk
// (following constants defined as other constants, in pk or imported).
func (w *walker) constValue(pk *pkgSrc, name string) (string, bool) {
	d, ok := pk.consts[name]
	if !ok {
		return "", false
	}
	if id, ok := d.expr.(*ast.Ident); ok && id.Name == name {
		return "", false // not a chain we can follow
	}
	return w.stringConst(site{pk: pk, f: d.file}, d.expr)
}

func (w *walker) codeConst(s site, e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == importName(s.f, apierrPath) {
			_, known := codeNames[e.Sel.Name]
			return e.Sel.Name, known
		}
	case *ast.Ident:
		if s.pk.path == apierrPath {
			_, known := codeNames[e.Name]
			return e.Name, known
		}
	}
	return "", false
}

// resolve returns the constant values e can take: e itself when term
// accepts it, or, when e is a parameter of the enclosing function, the
// values its callers in the same package pass (recursively).
func (w *walker) resolve(s site, e ast.Expr, term terminal, seen map[string]bool) ([]value, []problem) {
	if v, ok := term(s, e); ok {
		return []value{{w.pos(s, e), v}}, nil
	}
	id, ok := e.(*ast.Ident)
	idx := paramIndex(s.fn, id)
	if !ok || idx < 0 {
		return nil, []problem{{w.pos(s, e), fmt.Sprintf("reason %s is not a constant (or a parameter given constants) the reason check can read", exprString(e))}}
	}
	key := fmt.Sprintf("%s.%s#%d", s.pk.path, s.fn.Name.Name, idx)
	if seen[key] {
		return nil, nil
	}
	seen[key] = true
	var vals []value
	var probs []problem
	callers := 0
	for _, f := range s.pk.files {
		for _, d := range f.Decls {
			ast.Inspect(d, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || !calls(call, s.fn) || idx >= len(call.Args) {
					return true
				}
				callers++
				fn, _ := d.(*ast.FuncDecl)
				v, p := w.resolve(site{s.pk, f, fn}, call.Args[idx], term, seen)
				vals, probs = append(vals, v...), append(probs, p...)
				return true
			})
		}
	}
	if callers == 0 {
		probs = append(probs, problem{w.pos(s, e), fmt.Sprintf("reason parameter %s of %s is never given a value in its package", id.Name, s.fn.Name.Name)})
	}
	return vals, probs
}

func calls(call *ast.CallExpr, fn *ast.FuncDecl) bool {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return fn.Recv == nil && f.Name == fn.Name.Name
	case *ast.SelectorExpr:
		return fn.Recv != nil && f.Sel.Name == fn.Name.Name
	}
	return false
}

func paramIndex(fn *ast.FuncDecl, id *ast.Ident) int {
	if fn == nil || id == nil {
		return -1
	}
	i := 0
	for _, fld := range fn.Type.Params.List {
		if len(fld.Names) == 0 {
			i++
			continue
		}
		for _, n := range fld.Names {
			if n.Name == id.Name {
				return i
			}
			i++
		}
	}
	return -1
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		return exprString(e.Fun) + "(...)"
	}
	return fmt.Sprintf("%T", e)
}

// repoModules reads go.work at root and returns module path -> dir.
func repoModules(t *testing.T, root string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]string{}
	inUse := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		var dir string
		switch {
		case strings.HasPrefix(line, "use ("):
			inUse = true
			continue
		case inUse && line == ")":
			inUse = false
			continue
		case inUse && line != "" && !strings.HasPrefix(line, "//"):
			dir = line
		case strings.HasPrefix(line, "use "):
			dir = strings.TrimSpace(strings.TrimPrefix(line, "use"))
		default:
			continue
		}
		dir = filepath.Join(root, dir)
		mb, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(mb), "\n") {
			if p, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
				mods[strings.TrimSpace(p)] = dir
			}
		}
	}
	if len(mods) == 0 {
		t.Fatal("go.work lists no modules")
	}
	return mods
}

// packagePaths lists the import paths of every package directory of the
// modules (skipping testdata, hidden directories and nested modules).
func packagePaths(t *testing.T, modules map[string]string) []string {
	t.Helper()
	nested := map[string]bool{}
	for _, dir := range modules {
		nested[dir] = true
	}
	var paths []string
	for mod, root := range modules {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				return nil
			}
			n := d.Name()
			if p != root && (nested[p] || n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			rel, _ := filepath.Rel(root, p)
			ip := mod
			if rel != "." {
				ip = mod + "/" + filepath.ToSlash(rel)
			}
			paths = append(paths, ip)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(paths)
	return paths
}

// repoRoot is the directory holding go.work above the working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test directory")
		}
		dir = parent
	}
}
