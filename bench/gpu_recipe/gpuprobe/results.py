"""results.json: the document rewritten after every epoch, and its printed summary."""

from __future__ import annotations

import json
import os
import time

import numpy as np


class Results:
    def __init__(self, path, meta):
        self.path = path
        self.doc = {"meta": meta, "archs": {}}

    def write(self):
        self.doc["meta"]["elapsed_s"] = round(time.time() - self.doc["meta"]["t0"], 2)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1, default=_json_default)
        os.replace(tmp, self.path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def summary(res):
    lines = ["", "=" * 100,
             f"SUMMARY  backend={res.doc['meta'].get('backend')} "
             f"precision={res.doc['meta'].get('precision')} "
             f"device={res.doc['meta'].get('device')}  total {res.doc['meta'].get('elapsed_s')}s",
             f"{'arch':<9} {'ep run/plan/req':>15} {'best':>4} {'val':>6} | "
             f"{'pub acc':>7} {'pub F1':>6} {'pubTTA':>6} | {'prv acc':>7} {'prv F1':>6} "
             f"{'prvTTA':>6} | {'1st ep':>6} {'s/ep':>5} {'img/s':>7} | "
             f"{'train acc':>9} {'10-crop pub acc/F1 per shift'}"]
    for arch, a in res.doc["archs"].items():
        if a.get("status") != "ok":
            hist = a.get("history") or []
            lines.append(f"{arch:<9} status={a.get('status')} epochs={len(hist)} "
                         f"best_val_acc={a.get('best_val_accuracy')} "
                         f"error={(a.get('error') or '').strip().splitlines()[-1:]}")
            continue
        t = a.get("test", {})

        def g(key, field, t=t):
            v = t.get(key, {}).get(field)
            return f"{v:.4f}" if v is not None else "   -  "
        lines.append(
            f"{arch:<9} {a['epochs_run']:>5}/{a['epochs_planned']}/{a['epochs_requested']:<5} "
            f"{a['best_epoch']:>4} {a['best_val_accuracy']:.4f} | "
            f"{g('public', 'accuracy'):>7} {g('public', 'macro_f1')[:6]:>6} "
            f"{g('public', 'tta_flip_accuracy')[:6]:>6} | "
            f"{g('private', 'accuracy'):>7} {g('private', 'macro_f1')[:6]:>6} "
            f"{g('private', 'tta_flip_accuracy')[:6]:>6} | "
            f"{a['first_epoch_s']:6.1f} "
            f"{(a['epoch_s_median_after_first'] or float('nan')):5.2f} "
            f"{(a['train_images_per_s_median_after_first'] or float('nan')):7.0f} | "
            f"{(a['history'][-1].get('accuracy') or float('nan')):9.4f} "
            + " ".join(f"s{k[len('tta_tencrop'):-len('_accuracy')]}: {v:.4f}/"
                       f"{t['public'][k.replace('_accuracy', '_macro_f1')]:.4f}"
                       for k, v in t.get("public", {}).items()
                       if k.startswith("tta_tencrop") and k.endswith("_accuracy"))
            + (f"  (scored in {a['eval_precision']}: bf16 gave non-finite outputs)"
               if a.get("eval_nonfinite_bf16") else "")
            + (f"  ({a['precision']})" if a.get("precision") else ""))
    lines.append("=" * 100)
    return "\n".join(lines)
