"""Fake olddefconfig: keep the last value of each option, drop options whose
`depends on` / enclosing `if` symbols are not set (only plain symbols and !SYM)."""
import re
import sys

kconfig, dotconfig = sys.argv[1], sys.argv[2]
values = {}
for line in open(dotconfig):
    if m := re.match(r"^CONFIG_(\w+)=(.*)$", line.strip()):
        values[m.group(1)] = m.group(2)
    elif m := re.match(r"^# CONFIG_(\w+) is not set$", line.strip()):
        values[m.group(1)] = "n"
deps, ifs, current = {}, [], None
for line in open(kconfig):
    word = line.strip()
    if word.startswith("if "):
        ifs.append(word[3:])
    elif word.startswith("endif"):
        ifs.pop()
    elif m := re.match(r"^(menu)?config (\w+)$", word):
        current = m.group(2)
        deps[current] = list(ifs)
    elif word.startswith("depends on ") and current:
        deps[current].append(word[len("depends on "):])
def ok(term):
    if term == "m":
        return values.get("MODULES") == "y"
    if term.startswith("!"):
        return values.get(term[1:], "n") == "n"
    return values.get(term, "n") in ("y", "m")
changed = True
while changed:
    changed = False
    for sym, terms in deps.items():
        if values.get(sym, "n") != "n" and not all(ok(t) for t in terms):
            values[sym] = "n"
            changed = True
with open(dotconfig, "w") as out:
    for sym, val in values.items():
        out.write(f"# CONFIG_{sym} is not set\n" if val == "n" else f"CONFIG_{sym}={val}\n")
