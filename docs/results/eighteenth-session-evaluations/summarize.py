import json, sys, glob, os, statistics as st
d = sys.argv[1]
for f in sorted(glob.glob(d + "/*.json")):
    r = json.load(open(f)); m = r["methods"]; svi = m["SVI"]["seconds"]
    row = []
    for k in ("PE-SVI-auto", "PE-SVI-GN"):
        v = m.get(k)
        if not v: continue
        ratio = svi / v["seconds"] if v["steps"] is not None else None
        row.append(f"{k}: steps {v['steps'] if v['steps'] is None else round(v['steps'],2)} s {v['seconds']*1e3:.3f} ms " + (f"{ratio:.0f}x" if ratio else "-") + f" run {v.get('runSteps') and round(v['runSteps'],1)}/{v.get('runMaxSteps')}")
    print(os.path.basename(f), f"SVI {m['SVI']['steps']} steps {svi*1e3:.1f} ms", " | ".join(row))
