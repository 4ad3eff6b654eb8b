package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium is headless Chromium driven by a page test: each step has a
// generous deadline and fails the test saying what it was doing.
type chromium struct {
	t     *testing.T
	ctx   context.Context // the browser's own (no deadline: one would stop it)
	shots string          // where shot writes: a temporary folder, docs/screenshots with UIAS_UPDATE_SCREENSHOTS
}

// newChromium starts the browser at path with a window of width x height; it stops
// with the test.
func newChromium(t *testing.T, path string, width, height int) *chromium {
	t.Helper()
	b := &chromium{t: t, shots: t.TempDir()}
	if os.Getenv("UIAS_UPDATE_SCREENSHOTS") != "" {
		b.shots = "../../docs/screenshots"
		if err := os.MkdirAll(b.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first call starts the browser (without a deadline: it would
	// stop the browser); every step after it has a generous one.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	b.ctx = bctx
	return b
}

func (b *chromium) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 60*time.Second)
}

// run runs actions as one step.
func (b *chromium) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, c := b.step()
	defer c()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// textOf is the text of the element sel selects.
func (b *chromium) textOf(sel string) string {
	b.t.Helper()
	ctx, c := b.step()
	defer c()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// location is the page's URL.
func (b *chromium) location() string {
	b.t.Helper()
	ctx, c := b.step()
	defer c()
	v, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

// shot saves a screenshot of the page as name in b.shots.
func (b *chromium) shot(name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		png, err := chromedp.CaptureScreenshot()(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Void{}, os.WriteFile(filepath.Join(b.shots, name), png, 0o644)
	}
}

// waitFor polls a JavaScript predicate until it holds, across the
// navigations a form submission or redirect makes (a poll the navigation
// interrupts is started again).
func (b *chromium) waitFor(what, predicate string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, c := context.WithTimeout(b.ctx, 10*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate))
		c()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// evalJS evaluates js and decodes its JSON value into out.
func (b *chromium) evalJS(what, js string, out any) {
	b.t.Helper()
	ctx, c := b.step()
	defer c()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js))
	if err == nil {
		err = json.Unmarshal(raw, out)
	}
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// accessible checks what labels and roles do not: the page's language,
// a title, text contrast (WCAG 2.1 AA: 4.5:1, 3:1 for large text) against
// the background it is drawn on, and a visible focus outline on every
// control reached with Tab.
func (b *chromium) accessible(page, lang string) {
	b.t.Helper()
	var got struct {
		Lang, Title string
		LowContrast []string
		NoFocus     []string
	}
	b.evalJS(page+": accessibility", accessibilityJS, &got)
	if got.Lang != lang || strings.TrimSpace(got.Title) == "" || len(got.LowContrast) > 0 || len(got.NoFocus) > 0 {
		b.t.Fatalf("%s: lang %q (want %q), title %q, text below the contrast minimum: %v, controls without a visible focus: %v",
			page, got.Lang, lang, got.Title, got.LowContrast, got.NoFocus)
	}
}
