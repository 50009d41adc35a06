#!/usr/bin/env bash
# The figures in a real browser: every <text> of every SVG the program draws lies inside its
# viewBox, measured with Chromium's own font metrics (getBBox through each element's transform).
# The figures: the samples of the test cli/svg_fit (heatmaps from 1x1 to 64 heads x 80 layers,
# long titles and labels, the report's histogram and the compare scatter, small and large) and the
# outputs of a small detect / niah / report / compare run on the demo model.
#
# Needs Debian's chromium (.ci/run installs it).  usage: test/svg_check.sh [BIN_DIR]  (where
# retrieval_heads and test_runner are built; default .)   Prints one line per figure, exits 1 if
# any text falls outside.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then echo "svg_check: chromium not found (apt-get install chromium)" >&2; exit 2; fi
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/svg"
RH_SVG_SAMPLES="$d/svg" "$bin/test_runner" --bin "$bin/retrieval_heads" cli/svg_fit >/dev/null
m=weights/demo.rhw
"$bin/retrieval_heads" detect $m --lengths 256:1024:3 --depths 0:100:3 --n-needles 4 -t 2 --quiet -o "$d/svg/demo_scores.json" >/dev/null
"$bin/retrieval_heads" niah $m --lengths 300 --depths 50 --n-needles 2 -t 2 --quiet -o "$d/svg/demo_niah_1x1" >/dev/null
"$bin/retrieval_heads" niah $m --lengths 300:1024:12 --depths 0:100:11 --n-needles 1 -t 2 --quiet \
    --mask-top 3 --scores "$d/svg/demo_scores.json" -o "$d/svg/demo_niah_12x11" >/dev/null
"$bin/retrieval_heads" report "$d/svg/demo_scores.json" --svg "$d/svg/demo_report.svg" >/dev/null
"$bin/retrieval_heads" report test/method/published_excerpt.json --svg "$d/svg/published_report.svg" >/dev/null
"$bin/retrieval_heads" compare "$d/svg/demo_scores.json" "$d/svg/demo_scores.json" --svg "$d/svg/demo_compare.svg" >/dev/null

# one page: every figure inline, and a script that writes one verdict line per figure
{
    echo '<!DOCTYPE html><html><body>'
    for f in "$d"/svg/*.svg; do
        echo "<div class=\"fig\" data-name=\"$(basename "$f")\">"
        cat "$f"
        echo '</div>'
    done
    cat <<'EOF'
<pre id="out"></pre>
<script>
var out = [];
document.querySelectorAll('div.fig').forEach(function (div) {
  var svg = div.querySelector('svg'), name = div.getAttribute('data-name'), bad = [], n = 0;
  var vb = svg.viewBox.baseVal;
  if (!vb || vb.width === 0) { out.push('BAD ' + name + ': no viewBox'); return; }
  svg.querySelectorAll('text').forEach(function (t) {
    var b = t.getBBox(), m = t.getCTM(), s = svg.getCTM().inverse(), k;
    var pts = [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]];
    n++;
    for (k = 0; k < 4; k++) {
      var p = svg.createSVGPoint(); p.x = pts[k][0]; p.y = pts[k][1];
      p = p.matrixTransform(m).matrixTransform(s);
      if (p.x < vb.x - 0.5 || p.y < vb.y - 0.5 || p.x > vb.x + vb.width + 0.5 || p.y > vb.y + vb.height + 0.5) {
        bad.push('"' + t.textContent.slice(0, 40) + '" at (' + p.x.toFixed(1) + ', ' + p.y.toFixed(1) + ')');
        break;
      }
    }
  });
  out.push((bad.length ? 'BAD ' : 'OK  ') + name + ': ' + n + ' texts in ' + vb.width + ' x ' + vb.height +
           (bad.length ? '; outside: ' + bad.slice(0, 3).join('; ') : ''));
});
document.getElementById('out').textContent = 'SVGCHECK-BEGIN\n' + out.join('\n') + '\nSVGCHECK-END';
</script></body></html>
EOF
} > "$d/page.html"
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --disable-sync --no-first-run --user-data-dir="$d/profile" --virtual-time-budget=10000 --dump-dom \
    "file://$d/page.html" 2>/dev/null > "$d/dom.html"
sed -n '/SVGCHECK-BEGIN/,/SVGCHECK-END/p' "$d/dom.html" | grep -E '^(OK|BAD) ' > "$d/verdicts" || true
n_ok=$(grep -c '^OK ' "$d/verdicts" || true)
n_bad=$(grep -c '^BAD ' "$d/verdicts" || true)
n_svg=$(ls "$d"/svg/*.svg | wc -l)
cat "$d/verdicts"
if [ "$n_bad" != 0 ] || [ "$n_ok" != "$n_svg" ]; then
    echo "svg_check: $n_bad of $n_svg figures have text outside their viewBox ($n_ok checked fine)" >&2
    exit 1
fi
echo "svg_check: $n_svg figures, every text inside its viewBox (Chromium's metrics)"
