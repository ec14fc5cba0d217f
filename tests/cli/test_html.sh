#!/bin/bash
# `ipsweep report --format html` (runner/report/report_html.c, docs/report.md
# "HTML") on a real results file: a tiny synthetic-data run with two
# baselines, a v1 passport model, pruning and sign flipping (tables and
# figures) and a task that fails on purpose (the failures section), run with
# a --set override, from a spec whose comment holds HTML that must stay text.
# The page is checked as text (every table title of the markdown report,
# the failure and its message, provenance, spec text escaped, no URL but the
# SVG/XLink namespaces, nothing that loads, --out = stdout, the same bytes
# twice, no temporary files left) and then rendered in a real headless
# Chromium with the network unreachable: --dump-dom must hold the tables and
# one <figure> with an inline <svg> per plot, the screenshot must be a PNG
# that is not blank, and Chromium's network log must show no request made by
# the page (a control page with an <img> and an @import by URL shows that the
# log does catch them).
# Without chromium the browser part is skipped (SKIP line, exit status of the
# rest) unless IPSWEEP_REQUIRE_CHROMIUM=1; without gnuplot the page must say
# the figures were not drawn.
# Usage: IPSWEEP_BIN=build/ipsweep bash tests/cli/test_html.sh
set -u
. "$(dirname "$0")/lib.sh" test_html
PY=/usr/bin/python3

cat >spec.yaml <<'EOF'
# The page must show this as text: <script>alert("x")</script> & 'quoted'
name: html-test
seed: 5
output: out/html.h5
data:
  source: synthetic:256x1x16x16/10
  train_limit: 192
  test_limit: 64
defaults:
  models: {arch: small-p-narrow, epochs: 1, batch: 32}
models:
  - name: base
    seed: [1, 2]
  - name: pv1
    scheme: v1
    signature: ip
tasks:
  - name: pruned
    kind: prune
    model: [base, pv1]
    rate: [0.0, 0.5]
  - name: flipped
    kind: flip
    model: pv1
    fraction: [0.0, 0.5]
  - name: broken
    kind: noop
    fail: true
EOF
# exit status 1: the noop task fails, on purpose
"$BIN" run spec.yaml --set data.test_limit=48 >run.log 2>&1
if [ ! -f out/html.h5 ] || ! grep -q 'noop' run.log; then
    echo "test_html: the run that makes the results file failed:"; tail -5 run.log; exit 1
fi

# --help names the format and --out
"$BIN" report --help >help.txt 2>&1
grep -q 'md|latex|csv|html' help.txt && grep -q -- '--out FILE' help.txt && ok || bad "report --help: $(cat help.txt)"

# the figures go to a private temporary directory under TMPDIR, removed afterwards
mkdir tmp
TMPDIR=$work/tmp "$BIN" report out/html.h5 --format html --out out/page.html 2>err.txt
rc=$?
[ $rc -eq 0 ] && ok || bad "report --format html --out: exit $rc: $(cat err.txt)"
[ -s out/page.html ] && ok || bad "no page written"
[ -z "$(ls tmp)" ] && ok || bad "temporary files left: $(ls tmp)"
[ -z "$(ls out | grep '\.tmp\.')" ] && ok || bad "--out left a temporary file: $(ls out)"
TMPDIR=$work/tmp "$BIN" report out/html.h5 --format html >stdout.html 2>/dev/null
cmp -s stdout.html out/page.html && ok || bad "stdout differs from --out FILE (or from the first page: not deterministic)"
"$BIN" report out/html.h5 --format html --out out/html.h5 >/dev/null 2>err.txt
[ $? -eq 2 ] && grep -q 'results file' err.txt && ok || bad "--out over the results file: $(cat err.txt)"
"$BIN" report out/html.h5 --format md --out out/page.md 2>/dev/null && "$BIN" report out/html.h5 --format md >page2.md 2>/dev/null
cmp -s out/page.md page2.md && ok || bad "--format md --out differs from stdout"

have_gnuplot=0
command -v gnuplot >/dev/null 2>&1 && have_gnuplot=1
# how many figures the page must have: the SVGs --plots writes for this file
nsvg=0
if [ $have_gnuplot = 1 ]; then
    "$BIN" report out/html.h5 --plots plots >/dev/null 2>&1
    nsvg=$(ls plots/*.svg 2>/dev/null | wc -l)
    [ "$nsvg" -ge 2 ] && ok || bad "--plots wrote $nsvg SVG files, expected prune and flip at least"
fi

# The page as text. Table titles: the markdown report's "## " lines, HTML-escaped.
grep '^## ' page2.md | sed 's/^## //' >titles.txt
if $PY - out/page.html titles.txt "$nsvg" "$have_gnuplot" >py.log 2>&1 <<'PYEOF'; then ok; else bad "page text:"; cat py.log; fi
import html, re, sys
page = open(sys.argv[1], encoding="utf-8").read()
titles = [l.rstrip("\n") for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
nsvg, have_gnuplot = int(sys.argv[3]), sys.argv[4] == "1"
errors = []
def need(cond, what):
    if not cond: errors.append(what)
need(page.startswith("<!DOCTYPE html>"), "not an HTML5 document")
need(len(titles) >= 4, "the markdown report has %d tables" % len(titles))
for t in titles:
    need("<h3>%s</h3>" % html.escape(t, quote=True).replace("&#x27;", "&#39;") in page, "table title %r missing" % t)
for s in ("Global magnitude pruning", "Sign flipping", "noop:broken", "failed on purpose (fail: true)",
          "data.test_limit=48", "blas_version", "synthetic:256x1x16x16/10", 'id="status"', 'id="failures"',
          'id="tables"', 'id="figures"', 'id="provenance"', ">failed</span>"):
    need(s in page, "%r missing" % s)
# the spec's comment is text, not markup
need("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;" in page, "spec text not escaped")
need("<script" not in page.lower(), "a <script> in the page")
# nothing that loads: no URL but the SVG/XLink namespace names, no src=, no <link>, no @import, no url( but #ids
urls = set(re.findall(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>)]*", page))
urls -= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
need(not urls, "URLs in the page: %s" % sorted(urls))
need(not re.search(r"\ssrc\s*=", page, re.I), "a src= attribute")
need(not re.search(r"<link\b", page, re.I), "a <link> element")
need("@import" not in page, "an @import")
need(all(u.startswith("#") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", page)), "a url() that is not #id")
need(all(h.startswith("#") for h in re.findall(r"href\s*=\s*['\"]([^'\"]*)", page)), "an href that is not #id")
need("default-src 'none'" in page, "no Content-Security-Policy")
figs = re.findall(r"<figure id=\"fig-[^\"]*\"><figcaption>[^<]*</figcaption>\n<svg\b", page)
if have_gnuplot:
    need(len(figs) == nsvg, "%d figures with an inline <svg>, --plots wrote %d SVG files" % (len(figs), nsvg))
    ids = re.findall(r"\sid=['\"]([^'\"]*)['\"]", page)
    dup = sorted({i for i in ids if ids.count(i) > 1})
    need(not dup, "ids used twice (figures would share clip paths): %s" % dup[:5])
    need("<?xml" not in page, "an XML declaration inside the page")
else:
    need(not figs and "gnuplot is not installed" in page, "without gnuplot the page must say so")
if errors:
    print("\n".join(errors))
    sys.exit(1)
PYEOF

# ---------------------------------------------------------------------------
# A real browser, offline.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "${IPSWEEP_REQUIRE_CHROMIUM:-0}" = 1 ]; then
        bad "chromium is not installed (make deps installs it) and IPSWEEP_REQUIRE_CHROMIUM=1"
    else
        echo "SKIP the browser checks: chromium is not installed (make deps installs it)"
    fi
    echo "test_html: $pass passed, $fail failed"
    [ $fail -eq 0 ]
    exit
fi

# Runs chromium headless on a file with the network unreachable (a dead proxy,
# every host name unresolvable) and a fresh profile, logging its network
# activity to $out.net.json. --no-sandbox: the tests run as root. Tried twice:
# a browser that does not start within the time limit is not the page's fault.
browse() { # what(--dump-dom | --screenshot=FILE) page out
    local what=$1 page=$2 out=$3 try
    for try in 1 2; do
        rm -rf "$work/profile" "$out" "$out.net.json"
        timeout -k 5 90 chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
            --proxy-server=127.0.0.1:9 --host-resolver-rules="MAP * ~NOTFOUND" --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync --disable-extensions \
            --hide-scrollbars --window-size=1280,2000 --log-net-log="$out.net.json" \
            "$what" "file://$page" >"$out.stdout" 2>"$out.stderr"
        if [ "$what" = --dump-dom ]; then mv "$out.stdout" "$out"; fi
        [ -s "$out" ] && [ -s "$out.net.json" ] && return 0
        sleep 1
    done
    return 1
}

# The requests a page made, from Chromium's network log: those whose initiator
# is a document (Chromium's own background requests have none: "not an origin").
cat >netlog.py <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
types = {v: k for k, v in d["constants"]["logEventTypes"].items()}
for ev in d["events"]:
    p = ev.get("params") or {}
    if types.get(ev["type"]) == "URL_REQUEST_START_JOB" and "url" in p and p.get("initiator") != "not an origin":
        print(p["url"])
PYEOF

browse --dump-dom "$work/out/page.html" dom.html && ok || bad "chromium --dump-dom failed: $(tail -3 dom.html.stderr)"
browse --screenshot="$work/shot.png" "$work/out/page.html" shot.png && ok || bad "chromium --screenshot failed: $(tail -3 shot.png.stderr)"
for log in dom.html.net.json shot.png.net.json; do
    [ -s $log ] || continue
    $PY netlog.py $log >requests.txt 2>&1 && [ ! -s requests.txt ] && ok || bad "the page made requests ($log): $(head -3 requests.txt)"
done
# the control: a page that loads by URL, which the network log must catch
printf '<!DOCTYPE html><html><body><p>control</p><img src="http://example.invalid/a.png"></body></html>\n' >control.html
if browse --dump-dom "$work/control.html" control.dom; then
    $PY netlog.py control.dom.net.json | grep -q 'example.invalid/a.png' && ok ||
        bad "the network log did not catch the control page's <img> request: the check above proves nothing"
else
    bad "chromium --dump-dom failed on the control page"
fi

if [ -s dom.html ]; then
    if $PY - dom.html titles.txt "$nsvg" "$have_gnuplot" >dom.log 2>&1 <<'PYEOF'; then ok; else bad "the DOM:"; cat dom.log; fi
import html.parser, sys
dom = open(sys.argv[1], encoding="utf-8").read()
titles = [l.rstrip("\n") for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
nsvg, have_gnuplot = int(sys.argv[3]), sys.argv[4] == "1"

class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.h3, self.tables, self.figsvg, self.svgtext, self.pre = [], [], 0, 0, 0, ""
        self.in_h3 = self.in_pre = False
    def handle_starttag(self, tag, attrs):
        if tag == "table": self.tables += 1
        if tag == "svg" and "figure" in self.stack: self.figsvg += 1
        if tag == "h3": self.in_h3 = True; self.h3.append("")
        if tag == "pre": self.in_pre = True
        self.stack.append(tag)
    def handle_endtag(self, tag):
        if tag == "h3": self.in_h3 = False
        if tag == "pre": self.in_pre = False
        while self.stack:
            if self.stack.pop() == tag: break
    def handle_data(self, d):
        if self.in_h3: self.h3[-1] += d
        if self.in_pre: self.pre += d
        if "svg" in self.stack and "figure" in self.stack and d.strip(): self.svgtext += 1

p = P()
p.feed(dom)
errors = []
for t in titles:
    if t not in p.h3: errors.append("table %r is not a heading of the rendered page" % t)
if p.tables < len(titles) + 2: errors.append("%d tables rendered" % p.tables)
if '<script>alert("x")</script> & \'quoted\'' not in p.pre: errors.append("the spec text is not shown as text")
if have_gnuplot:
    if p.figsvg != nsvg: errors.append("%d <svg> in <figure>s, expected %d" % (p.figsvg, nsvg))
    if not p.svgtext: errors.append("the figures have no text (axes, labels)")
if errors:
    print("\n".join(errors))
    sys.exit(1)
PYEOF
fi

# The screenshot: a PNG of the window's size that is not blank: many pixels
# far from white, dark text, and the status badge's colour (green done, red failed).
if [ -s shot.png ]; then
    if $PY - shot.png >png.log 2>&1 <<'PYEOF'; then ok; else bad "the screenshot:"; cat png.log; fi
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR": ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT": idat += body
    pos += 12 + n
w, h, depth, ctype, _, _, interlace = ihdr
assert (w, h) == (1280, 2000), "size %dx%d" % (w, h)
assert depth == 8 and ctype in (2, 6) and interlace == 0, "unexpected PNG format %s" % (ihdr,)
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
dark = red = green = 0
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if f == 1:
        for i in range(bpp, stride): line[i] = (line[i] + line[i - bpp]) & 255
    elif f == 2:
        for i in range(stride): line[i] = (line[i] + prev[i]) & 255
    elif f == 3:
        for i in range(stride): line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
    elif f == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if y % 4 == 0:  # a sample of the rows is enough to count
        for x in range(0, stride, bpp * 2):
            r, g, b = line[x], line[x + 1], line[x + 2]
            if r + g + b < 200: dark += 1
            if r > 180 and g < 80 and b < 80: red += 1
            if g > 100 and r < 60 and b < 90: green += 1
    prev = line
print("dark %d, red %d, green %d (sampled pixels)" % (dark, red, green))
assert dark > 2000, "hardly any dark pixels: a blank page?"
assert red > 50 and green > 50, "the status bar's green (done) and red (failed) are not there"
PYEOF
fi

echo "test_html: $pass passed, $fail failed"
[ $fail -eq 0 ]
