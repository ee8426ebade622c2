"""Write a short Markdown report from evaluate.regression's metrics.json.

Usage: python3 report.py METRICS_JSON REPORT_MD
"""
import json
import sys


def main():
    metrics_path, report_path = sys.argv[1], sys.argv[2]
    with open(metrics_path) as f:
        m = json.load(f)
    lines = [
        "# Ridge regression on the diabetes test rows",
        "",
        "| metric | value |",
        "|---|---|",
        f"| R² | {m['r2']:.4f} |",
        f"| RMSE | {m['rmse']:.2f} |",
        f"| rows | {m['rows']} |",
    ]
    with open(report_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"R² {m['r2']:.3f} on {m['rows']} test rows -> {report_path}")


if __name__ == "__main__":
    main()
