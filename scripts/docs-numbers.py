#!/usr/bin/python3
"""Regenerates the numbers and figures of README.md and docs/*.md from results
files, so that what the docs show is what `ipsweep report` prints (make
readme-numbers; the lead runs it on a fresh quick study).

Three kinds of places are rewritten:

  <!-- report:TABLE:begin [file=PATH] [rows=REGEX] -->
  ...                          replaced by the markdown table TABLE of
  <!-- report:TABLE:end -->    `ipsweep report PATH --table TABLE` (PATH
                               defaults to --results); rows=REGEX keeps the
                               rows matching REGEX (the header always).
                               TABLE "provenance" is the report's provenance
                               list: the build and machine of those numbers.

  <!-- figure:PLOT [file=PATH] -->   the image on the next line is replaced by
  ![...](docs/img/NAME.png)          PLOT.png of `ipsweep report PATH --plots`.

  build/ipsweep run SPEC --dry-run   # N tasks[, ~H core-hours ...]
                               N and H are set to what --dry-run prints.

Usage: scripts/docs-numbers.py [--bin build/ipsweep] [--results results/quick.h5]
       [--check] [FILE.md ...]   (default: README.md docs/*.md)
--check changes nothing and exits 1 when something is out of date. A marker
whose results file does not exist, or has no such table, is left as it is,
with a note.
"""
import argparse, glob, os, re, shutil, subprocess, sys, tempfile

BEGIN = re.compile(r"^<!-- report:([a-z0-9-]+):begin((?:\s+\w+=\S+)*)\s*-->\s*$")
FIGURE = re.compile(r"^<!-- figure:([a-z0-9-]+)((?:\s+\w+=\S+)*)\s*-->\s*$")
IMAGE = re.compile(r"^!\[[^\]]*\]\(([^)]+\.png)\)")
DRYRUN = re.compile(r"(build/ipsweep run (\S+\.yaml) --dry-run\s+# )(\d+) tasks(, ~[\d.]+ core-hours)?")


def options(text):
    return dict(kv.split("=", 1) for kv in text.split())


class Reports:
    def __init__(self, binary, tmp):
        self.bin, self.tmp, self.cache, self.plots = binary, tmp, {}, {}

    def report(self, path, table):
        key = (path, table)
        if key not in self.cache:
            args = [self.bin, "report", path, "--format", "md"] + ([] if table == "provenance" else ["--table", table])
            self.cache[key] = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        return self.cache[key]

    def table(self, path, table, rows):
        out = self.report(path, table).splitlines()
        if table == "provenance":
            lines = [l for l in out if l.startswith("- `")]
        else:
            lines = [l for l in out if l.startswith("|")]
            if rows:
                lines = lines[:2] + [l for l in lines[2:] if re.search(rows, l)]
        return lines  # empty: the file has no such table (rows); the caller keeps the old text

    def plot(self, path, name):
        if path not in self.plots:
            d = os.path.join(self.tmp, f"plots{len(self.plots)}")
            subprocess.run([self.bin, "report", path, "--plots", d], check=True, capture_output=True)
            self.plots[path] = d
        png = os.path.join(self.plots[path], name + ".png")
        if not os.path.exists(png):
            raise SystemExit(f"docs-numbers: {path} gave no plot {name}.png (is gnuplot installed?)")
        return png


def dry_run(binary, spec):
    out = subprocess.run([binary, "run", spec, "--dry-run"], check=True, capture_output=True, text=True).stdout
    n = re.search(r"^spec \S+: (\d+) tasks", out, re.M).group(1)
    h = re.search(r"\(([\d.]+) core-hours\)", out)
    return n, (str(round(float(h.group(1)))) if h else None)


def process(md, args, rep, notes):
    text = open(md, encoding="utf-8").read()
    lines, out, i, copies = text.split("\n"), [], 0, []
    while i < len(lines):
        line = lines[i]
        m, f = BEGIN.match(line), FIGURE.match(line)
        if m:
            name, opt = m.group(1), options(m.group(2))
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == f"<!-- report:{name}:end -->"), None)
            if end is None:
                raise SystemExit(f"docs-numbers: {md}:{i + 1}: no <!-- report:{name}:end -->")
            path = opt.get("file", args.results)
            table = rep.table(path, name, opt.get("rows")) if os.path.exists(path) else None
            if table:
                out += [line, ""] + table + [""]
            else:
                why = "does not exist" if table is None else f"has no {name} table" + (" rows matching " + opt["rows"] if "rows" in opt else "")
                notes.append(f"{md}:{i + 1}: kept {name} ({path} {why})")
                out += lines[i:end]
            out.append(lines[end])
            i = end + 1
            continue
        if f and i + 1 < len(lines) and IMAGE.match(lines[i + 1]):
            path = options(f.group(2)).get("file", args.results)
            if os.path.exists(path):
                copies.append((rep.plot(path, f.group(1)), IMAGE.match(lines[i + 1]).group(1)))
            else:
                notes.append(f"{md}:{i + 1}: kept figure {f.group(1)} ({path} does not exist)")
        d = DRYRUN.search(line)
        if d and os.path.exists(d.group(2)):
            n, h = dry_run(args.bin, d.group(2))
            hours = f", ~{h} core-hours" if d.group(4) and h else (d.group(4) or "")
            line = line[: d.start()] + d.group(1) + f"{n} tasks{hours}" + line[d.end():]
        out.append(line)
        i += 1
    new = "\n".join(out)
    stale = [md] if new != text else []
    for src, dst in copies:
        with open(src, "rb") as a:
            same = os.path.exists(dst) and open(dst, "rb").read() == a.read()
        if not same:
            stale.append(dst)
            if not args.check:
                shutil.copyfile(src, dst)
    if new != text and not args.check:
        open(md, "w", encoding="utf-8").write(new)
    return stale


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default="build/ipsweep")
    p.add_argument("--results", default="results/quick.h5")
    p.add_argument("--check", action="store_true")
    p.add_argument("files", nargs="*")
    args = p.parse_args()
    files = args.files or ["README.md"] + sorted(glob.glob("docs/*.md"))
    notes, stale = [], []
    with tempfile.TemporaryDirectory() as tmp:
        rep = Reports(args.bin, tmp)
        for md in files:
            stale += process(md, args, rep, notes)
    for n in notes:
        print("note:", n)
    verb = "out of date" if args.check else "updated"
    print(f"docs-numbers: {len(stale)} {verb}" + (": " + ", ".join(stale) if stale else ""))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
