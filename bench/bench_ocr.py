"""OCR quality and speed on generated zh + en pages: Sieve's reader (rapid-layout + rapidocr) beside Tesseract.

    .venv/bin/python bench/bench_ocr.py [--pages 6] [--threads 2] [--no-tesseract]

Needs Debian's fonts-noto-cjk and fonts-dejavu (apt-get install --no-install-recommends fonts-noto-cjk
fonts-dejavu-core fonts-dejavu-extra); Tesseract (tesseract-ocr tesseract-ocr-chi-sim) is the baseline
when installed. On a shared machine, wall-clock pages/s depend on the neighbours' load: the CPU
seconds per page (and the pages/s they allow on idle cores) are printed beside them. Character
error rate = edit distance / reference length, whitespace removed from both
(CJK text has no spaces to get right), text read in the reader's own reading order:

- clean: text lines in four fonts (DejaVu Sans/Serif, Noto Sans/Serif CJK SC) at 20-36 px;
- noisy: the same lines with Gaussian noise, a slight blur and JPEG at quality 50;
- skewed scan: a paragraph rotated 1.5° on grey paper, with noise;
- two-column page and a ruled table (reading order and table rows count).

Then a scanned PDF (page images only) read end to end through the PDF loader: pages/s with the
given ONNX threads, and the share of time in layout analysis, OCR, and the rest (rendering, reading
order); Tesseract's pages/s on the same page images is the baseline ratio.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import time

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = {
    "DejaVu Sans": ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0),
    "DejaVu Serif": ("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", 0),
    "Noto Sans CJK SC": ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    "Noto Serif CJK SC": ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
}
CJK_FONTS = ("Noto Sans CJK SC", "Noto Serif CJK SC")

EN = [
    "The warehouse opens at seven and closes at nine.",
    "Invoices above 5,000 EUR need a second signature.",
    "Backups run every night and are kept for 30 days.",
    "Visitors must wear a badge at all times on site.",
    "The quarterly report is due on the third Friday.",
    "Replace the air filters every six months (model AF-204).",
]
ZH = [
    "仓库每天早上七点开门，晚上九点关门。",
    "超过五千元的发票需要第二个签名。",
    "备份每晚运行一次，保留三十天。",
    "访客在厂区内必须始终佩戴胸卡。",
    "季度报告须在第三个星期五之前提交。",
    "空气过滤器每六个月更换一次，型号为AF-204。",
]


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path, index = FONTS[name]
    return ImageFont.truetype(path, size, index=index)


def line_image(text: str, face: str, size: int) -> Image.Image:
    f = font(face, size)
    left, top, right, bottom = f.getbbox(text)
    image = Image.new("RGB", (right - left + 2 * size, bottom - top + 2 * size), "white")
    ImageDraw.Draw(image).text((size - left, size - top), text, fill="black", font=f)
    return image


def noisy(image: Image.Image, rng: random.Random, sigma: float = 12.0) -> Image.Image:
    import numpy as np

    pixels = np.asarray(image.convert("L"), dtype=np.float32)
    pixels += np.random.default_rng(rng.randrange(1 << 30)).normal(0, sigma, pixels.shape)
    out = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).filter(ImageFilter.GaussianBlur(0.6))
    buffer = io.BytesIO()
    out.convert("RGB").save(buffer, "JPEG", quality=50)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def paragraph_page(lines: list[str], face: str, size: int = 26, width: int = 1100) -> Image.Image:
    image = Image.new("RGB", (width, 120 + len(lines) * int(size * 1.8)), "white")
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        draw.text((60, 60 + i * int(size * 1.8)), text, fill="black", font=font(face, size))
    return image


def skewed_scan(lines: list[str], face: str, rng: random.Random) -> Image.Image:
    page = paragraph_page(lines, face)
    page = page.rotate(1.5, resample=Image.BICUBIC, expand=True, fillcolor="white")
    grey = Image.new("RGB", page.size, (236, 233, 226))
    grey.paste(page, mask=page.convert("L").point(lambda v: 255 if v < 200 else 0))
    return noisy(grey, rng, sigma=8.0)


def two_column_page(left: list[str], right: list[str]) -> tuple[Image.Image, str]:
    image = Image.new("RGB", (1240, 900), "white")
    draw = ImageDraw.Draw(image)
    f_zh, f_en = font("Noto Sans CJK SC", 24), font("DejaVu Serif", 20)
    draw.text((60, 50), "设施手册 Facility Handbook", fill="black", font=font("Noto Sans CJK SC", 40))
    for i, text in enumerate(left):
        draw.text((60, 160 + i * 56), text, fill="black", font=f_zh)
    for i, text in enumerate(right):
        draw.text((660, 160 + i * 56), text, fill="black", font=f_en)
    truth = "设施手册 Facility Handbook" + "".join(left) + "".join(right)
    return image, truth


def table_page(rows: list[tuple[str, ...]]) -> tuple[Image.Image, str]:
    image = Image.new("RGB", (1000, 120 + 56 * len(rows)), "white")
    draw = ImageDraw.Draw(image)
    f = font("Noto Sans CJK SC", 24)
    width = 880 // len(rows[0])
    for r, row in enumerate(rows):
        top = 60 + 56 * r
        draw.line((60, top, 940, top), fill="black", width=2)
        for c, cell in enumerate(row):
            draw.text((72 + c * width, top + 12), cell, fill="black", font=f)
    bottom = 60 + 56 * len(rows)
    draw.line((60, bottom, 940, bottom), fill="black", width=2)
    for c in range(len(rows[0]) + 1):
        draw.line((60 + c * width, 60, 60 + c * width, bottom), fill="black", width=2)
    return image, "".join("".join(row) for row in rows)


def distance(a: str, b: str) -> int:
    """Levenshtein distance, two rows at a time."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def squeeze(text: str) -> str:
    return "".join(text.split())


def sieve_read(image: Image.Image) -> str:
    from sieve.ingest.document import TableSection, TextSection
    from sieve.ingest.ocr import OcrEngine

    parts = []
    for section in OcrEngine.shared().read_page(image, 1)[0]:
        if isinstance(section, TextSection):
            parts.append(section.text)
        else:  # a table: caption, header, rows, cell by cell
            assert isinstance(section, TableSection)
            parts.append("".join([section.caption, *section.header, *(c for row in section.rows for c in row)]))
    return "\n".join(parts)


def tesseract_read(image: Image.Image, threads: int) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    env = {**os.environ, "OMP_THREAD_LIMIT": str(threads)}
    return subprocess.run(["tesseract", "stdin", "stdout", "-l", "chi_sim+eng", "--psm", "3"], input=buffer.getvalue(),
                          capture_output=True, check=True, env=env).stdout.decode("utf-8")


def samples(rng: random.Random) -> dict[str, list[tuple[Image.Image, str]]]:
    clean, noise = [], []
    for face in FONTS:
        for size in (20, 28, 36):
            texts = ZH if face in CJK_FONTS else EN
            text = texts[(size + len(face)) % len(texts)]
            image = line_image(text, face, size)
            clean.append((image, text))
            noise.append((noisy(image, rng), text))
        if face in CJK_FONTS:  # mixed-script lines read in a CJK font as well
            text = EN[len(face) % len(EN)]
            clean.append((line_image(text, face, 28), text))
            noise.append((noisy(line_image(text, face, 28), rng), text))
    skewed = [(skewed_scan(EN[:4], "DejaVu Serif", rng), "".join(EN[:4])),
              (skewed_scan(ZH[:4], "Noto Serif CJK SC", rng), "".join(ZH[:4]))]
    table = [("区域", "负责人", "周期"), ("装卸区", "王芳", "每周"), ("冷库", "Kenji", "每日"),
             ("Office", "Ana", "Monthly")]
    return {
        "clean lines": clean,
        "noisy lines": noise,
        "skewed scan": skewed,
        "two-column page": [two_column_page(ZH[:5], EN[:5])],
        "ruled table": [table_page(table)],
    }


def cer(reader, cases: list[tuple[Image.Image, str]]) -> tuple[float, float]:
    errors = total = 0
    started = time.perf_counter()
    for image, truth in cases:
        errors += distance(squeeze(reader(image)), squeeze(truth))
        total += len(squeeze(truth))
    return errors / total, time.perf_counter() - started


def scanned_pdf(pages: int) -> tuple[bytes, list[Image.Image]]:
    images = []
    for n in range(pages):
        lines = [f"{n + 1}. {EN[(n + i) % len(EN)]}" if i % 2 else ZH[(n + i) % len(ZH)] for i in range(14)]
        page = Image.new("RGB", (1240, 1754), "white")
        draw = ImageDraw.Draw(page)
        draw.text((100, 100), f"第{n + 1}章 Chapter {n + 1}", fill="black", font=font("Noto Sans CJK SC", 44))
        for i, text in enumerate(lines):
            draw.text((100, 220 + i * 70), text, fill="black", font=font("Noto Serif CJK SC", 28))
        images.append(page)
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return buffer.getvalue(), images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=6, help="pages of the scanned PDF")
    ap.add_argument("--threads", type=int, default=2, help="ONNX threads (and Tesseract's)")
    ap.add_argument("--no-tesseract", action="store_true")
    args = ap.parse_args()
    os.environ["SIEVE_OCR_THREADS"] = str(args.threads)
    tesseract = not args.no_tesseract and shutil.which("tesseract") is not None

    from sieve.ingest.loaders import load_bytes
    from sieve.ingest.ocr import OcrEngine

    engine = OcrEngine.shared()
    sets = samples(random.Random(7))
    state = "off" if args.no_tesseract else "yes" if tesseract else "not installed (skipped)"
    print(f"threads: {args.threads}; tesseract: {state}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'set':<18}{'n':>4}{'sieve CER':>11}{'s':>7}" + (f"{'tesseract CER':>15}{'s':>7}" if tesseract else ""))
    for name, cases in sets.items():
        ours, ours_s = cer(sieve_read, cases)
        row = f"{name:<18}{len(cases):>4}{ours:>10.2%}{ours_s:>7.1f}"
        if tesseract:
            theirs, theirs_s = cer(lambda image: tesseract_read(image, args.threads), cases)
            row += f"{theirs:>14.2%}{theirs_s:>7.1f}"
        print(row)

    data, images = scanned_pdf(args.pages)
    engine.timings.layout = engine.timings.ocr = 0.0
    engine.timings.pages = 0
    per_page = []
    from sieve.ingest import ocr

    previous = ocr.page_progress.set(lambda _n, _d, _t: per_page.append(time.perf_counter()))
    started, cpu = time.perf_counter(), time.process_time()
    doc = load_bytes(data, "scan.pdf")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    ocr.page_progress.reset(previous)
    gaps = [b - a for a, b in zip([started, *per_page], per_page, strict=False)]
    rest = elapsed - engine.timings.layout - engine.timings.ocr
    print(f"\nscanned PDF, {args.pages} pages of 1240×1754 (150 DPI A4) through the PDF loader: "
          f"{args.pages / elapsed:.2f} pages/s ({elapsed:.1f} s; per page median {statistics.median(gaps):.2f} s, "
          f"max {max(gaps):.2f} s); {len(doc.sections)} sections")
    # on a shared machine wall time depends on the neighbours; CPU time per page does not
    print(f"CPU time {cpu / args.pages:.2f} s per page: {args.threads / (cpu / args.pages):.2f} pages/s "
          f"if {args.threads} cores were free for it")
    print(f"time share: layout {engine.timings.layout / elapsed:.0%}, OCR {engine.timings.ocr / elapsed:.0%}, "
          f"rest (load, render, reading order) {rest / elapsed:.0%}")
    if tesseract:
        started = time.perf_counter()
        for image in images:
            tesseract_read(image, args.threads)
        theirs = time.perf_counter() - started
        print(f"tesseract on the same page images: {args.pages / theirs:.2f} pages/s; "
              f"sieve/tesseract speed ratio {theirs / elapsed:.2f}")


if __name__ == "__main__":
    main()
