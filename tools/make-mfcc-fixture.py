#!/usr/bin/env python3
"""Writes the MFCC reference fixture for Tests/AudioFeaturesTests.

Deterministic test signal (1 s at 8 kHz, 16-bit mono WAV): three tones, a linear chirp
200 -> 3500 Hz, an amplitude envelope and seeded Gaussian noise. The reference features come
from python_speech_features (float64) on the samples as libsndfile returns them (int16 / 32768):

  mfcc.csv             mfcc(..., winfunc=numpy.hamming, nfft=256, appendEnergy=True)  [99, 13]
  mfcc_no_energy.csv   same with appendEnergy=False                                    [99, 13]
  delta.csv            delta(mfcc, 2)                                                   [99, 13]
  delta_delta.csv      delta(delta(mfcc, 2), 2)                                         [99, 13]

Usage: pip install python_speech_features numpy scipy
       python3 tools/make-mfcc-fixture.py [output-dir]
"""
import os
import sys
import wave

import numpy
from python_speech_features import delta, mfcc

RATE = 8000


def make_signal():
    rng = numpy.random.default_rng(20240611)
    t = numpy.arange(RATE) / RATE
    x = 0.30 * numpy.sin(2 * numpy.pi * 440 * t)
    x += 0.15 * numpy.sin(2 * numpy.pi * 1000 * t + 0.3)
    x += 0.10 * numpy.sin(2 * numpy.pi * 2500 * t + 1.1) * (t > 0.5)
    f0, f1 = 200.0, 3500.0
    x += 0.20 * numpy.sin(2 * numpy.pi * (f0 * t + 0.5 * (f1 - f0) * t * t))
    x *= 0.6 + 0.4 * numpy.sin(2 * numpy.pi * 3 * t)
    x += 0.02 * rng.standard_normal(RATE)
    return numpy.clip(numpy.round(x * 32767), -32768, 32767).astype(numpy.int16)


def write_csv(path, m):
    with open(path, "w") as f:
        for row in m:
            f.write(",".join("%.9g" % v for v in row) + "\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "AudioFeaturesTests", "Fixtures")
    os.makedirs(out, exist_ok=True)
    pcm = make_signal()
    with wave.open(os.path.join(out, "mfcc-signal.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    sig = pcm.astype(numpy.float64) / 32768.0
    kw = dict(samplerate=RATE, winlen=0.025, winstep=0.01, numcep=13, nfilt=26, nfft=256, lowfreq=0,
              highfreq=None, preemph=0.97, ceplifter=22, winfunc=numpy.hamming)
    m = mfcc(sig, appendEnergy=True, **kw)
    m0 = mfcc(sig, appendEnergy=False, **kw)
    d = delta(m, 2)
    dd = delta(d, 2)
    write_csv(os.path.join(out, "mfcc.csv"), m)
    write_csv(os.path.join(out, "mfcc_no_energy.csv"), m0)
    write_csv(os.path.join(out, "delta.csv"), d)
    write_csv(os.path.join(out, "delta_delta.csv"), dd)
    print("wrote %d frames x %d to %s" % (m.shape[0], m.shape[1], out))


if __name__ == "__main__":
    main()
