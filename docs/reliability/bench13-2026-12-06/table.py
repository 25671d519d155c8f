"""issue 13's bench: a Markdown table per scenario from `hastack bench --report DIR`'s bench.json."""
import json, sys
for path in sys.argv[1:]:
    for scenario, rows in json.load(open(path)).items():
        runs = {p: max((r[p]["runs"] for r in rows if r.get(p)), default=0) for p in ("reference", "hastack")}
        print(f"\n`{scenario}`: {runs['reference']} runs under the reference profile, {runs['hastack']} under hastack's\n")
        print("| figure | target | reference: median (worst) | hastack: median (worst) | reference / hastack | verdict (worst run) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            def cell(p):
                st = r.get(p)
                return "-" if not st or st.get("median") is None else f"{st['median']:.2f} ({st['max']:.2f})"
            if (cell("hastack") == "-" and cell("reference") == "-") or "(no fault)" in r["label"]:
                continue  # the soak's figures: judged only where nothing is faulted
            unit = " s" if r["figure"].endswith("_s") else ""
            ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "-"
            verdict = {True: "met", False: "missed", None: "-"}[r.get("passed")]
            print(f"| {r['label']} | <= {r['limit']:g}{unit} | {cell('reference')} | {cell('hastack')} | {ratio} | {verdict} |")
