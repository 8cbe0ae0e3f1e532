package org.footfall.core;

import java.util.Arrays;

/**
 * Turns committed step-onset logits, frame by frame, into step events, cadence and active time:
 * the Java twin of {@code edge.counter.Counter} and its {@code _Tracker} (the rules are in that
 * module's docstring).
 *
 * <p>A <b>cadence tracker</b>: a hidden Markov model of a runner decoded by fixed-lag Viterbi, at
 * {@link #TRACK_RATE} tracker frames per output frame (50 frames/s, 20 ms), on the committed
 * logits interpolated linearly (tracker frame {@code 2j} is logit {@code j}, frame {@code 2j + 1}
 * the mean of logits {@code j} and {@code j + 1}). Its states: <i>off</i> (no runner), and
 * <i>(tempo, phase)</i>: a runner whose step period is {@code p} tracker frames (from the card's
 * {@code max_spm} to its {@code min_spm}) and whose last step was {@code phase} frames ago. At the
 * end of a period the runner either steps (phase 0) at a tempo at most {@link #TEMPO_STEP} frames
 * from the last, paying {@code tempo_lambda * |q - p| / p}, or stops; from off a runner may start
 * at any tempo. A step at a frame of logit {@code x} scores {@code x - logit(threshold)}, every
 * other frame 0; starting and stopping cost what {@code switch_prob} says.
 *
 * <p>Decoding: the frames are processed in blocks of the shortest period (no frame of a block
 * reads what the block writes), the scores normalised by their maximum at the end of each block;
 * then the best path is traced back from the block's best state and every frame {@code lag_s} or
 * more behind the block's end is decided: a step if the path has one there at least
 * {@link #MIN_GAP} frames after the last step counted. A decided frame that turns off into a run
 * also counts the steps of that run's path before it (at most {@link #RETRO_S} back), late, with
 * their times. {@link #flush()} decides the frames left from the best final path, where a runner
 * still running pays the stop (no step is made up where the stream ends before the next one).
 *
 * <p>A runner's figures: cadence is 60 / the local step period while the decided state is a
 * runner; the stream is cut into {@link #ACTIVE_BIN_S} bins, a bin holding steps at
 * {@link #ACTIVE_MIN_SPM} or more is active; active time, mean cadence (steps per active minute)
 * and peak cadence (the highest cadence shown).
 *
 * <p>Bit-exact with Python: every score is computed with the same float64 operations in the same
 * order as {@code edge/counter.py}, the scores live in the same ring layout (so the best state's
 * ties break alike), every argmax takes the first index as numpy's, and every comparison is
 * strict exactly where Python's is; event times, counts and figures are held bit-equal by the
 * golden vectors. Fixed memory, allocated once: the scores (one a state), the back-pointers of the
 * last {@code lag_s + RETRO_S} and two blocks, one traced path, the last 8 step intervals and the
 * open activity bins; the per-frame work allocates nothing but the returned event times. Not
 * thread-safe: use it from one thread.
 */
public final class Counter {
    /** Front-end frames per output frame. */
    public static final int DENSITY_STRIDE = 4;
    /** 25 output frames (step-onset logits) per second. */
    public static final int DENSITY_FPS = FrontEnd.FRAMES_PER_SECOND / DENSITY_STRIDE;
    /** log-mel of digital silence, float32(log(LOG_EPS)) (-27.6): pads a stream shorter than one window. */
    public static final float PAD_LOG_MEL = (float) Math.log(FrontEnd.LOG_EPS);
    /**
     * A model window whose every log-mel value is at or below this (30 dB above the log's floor: digital
     * silence or a muted input) is not run: its frames read {@link #SILENT_LOGIT} and a streaming model's
     * state waits unchanged for the sound (edge.counter.SILENT_LOG_MEL).
     */
    public static final float SILENT_LOG_MEL = (float) (PAD_LOG_MEL + Math.log(1000.0));
    /** What a silent window's frames read: no step. */
    public static final float SILENT_LOGIT = -20.0f;
    /** No cadence is shown before this much audio is committed (s). */
    public static final double CADENCE_MIN_S = 3.0;
    /** Slower than the slowest walk: "no steps". */
    public static final double ACTIVE_MIN_SPM = 60.0;
    /** Active time is counted in bins of this length (s). */
    public static final double ACTIVE_BIN_S = 2.0;
    /** The cadence tracker's frames per output frame (50 frames/s: 20 ms). */
    public static final int TRACK_RATE = 2;
    /** The most a runner's step period changes from one step to the next, in tracker frames (40 ms). */
    public static final int TEMPO_STEP = 2;
    /** Two counted steps are at least this many tracker frames apart (0.2 s, 300 spm). */
    public static final int MIN_GAP = 10;
    /** A run confirmed late is counted back to its first step, at most this long before (s). */
    public static final double RETRO_S = 8.0;
    /** The local period is taken from this many last step intervals. */
    static final int N_INTERVALS = 8;

    /** What a runner is shown for the cadence ({@code Counter.cadence_state}). */
    public enum CadenceState {
        WARMING_UP("warming up"),
        NO_STEPS("no steps"),
        STEPS("steps");

        /** The Python name. */
        public final String label;

        CadenceState(String label) {
            this.label = label;
        }
    }

    private static final double[] EMPTY = new double[0];
    private static final double NEG_INF = Double.NEGATIVE_INFINITY;
    private static final int BAND = 2 * TEMPO_STEP + 1; // tempo changes -TEMPO_STEP .. +TEMPO_STEP

    private final int fps = DENSITY_FPS;
    private final int trackFps = CounterParams.FPS;
    private final CounterParams params;
    private final int binLen; // output frames per activity bin
    private final long binLag; // output frames: a step is never older than this (Python's Counter._lag_frames)
    private final int lagFrames; // tracker frames between a block's end and the frames it decides
    private final int retroFrames; // round(RETRO_S * 50)

    // ---- the tracker (edge.counter._Tracker) ----
    private final int nTempi;
    private final int[] per; // per[i] = periodMin + i
    private final int[] base; // tempo i's ring: score[base[i] .. base[i] + per[i])
    private final int[] tempoOf; // the tempo of each score slot
    private final int[] slotOf; // the slot within its tempo's ring
    private final int block; // tracker frames per block: the shortest period
    private final double[] trans; // trans[i * BAND + (j - i + TEMPO_STEP)]: the cost of tempo i -> j (-inf outside the range)
    private final double startCost;
    private final double stopCost;
    private final double bias; // -logit(threshold)
    private final double[] score; // state (i, phase) at frame u is score[base[i] + (u - phase) mod per[i]]
    private double off = 0.0;
    private long t = 0; // tracker frames processed
    private final int keep; // back-pointer frames kept
    private final short[] fromTempo; // [frame % keep][tempo]: where the step came from (a tempo, or -1: from off)
    private final short[] fromOff; // [frame % keep]: where off came from (-1: off, or the tempo that stopped)
    private final long[] since; // [frame % keep]: the first frame of the stretch of off that frame's off is in
    private long offSince = 0; // the same for the last frame processed
    private final double[] last; // scratch: the scores of the periods ending at this frame, per tempo
    private final boolean[] pathOn; // the traced path over frames lo .. t - 1: a runner's frame (indexed from lo)
    private final long[] pathSteps; // its steps (frames, descending)
    private int nPathSteps = 0;

    // ---- the driver (edge.counter.Counter) ----
    private final double[] pending; // interpolated tracker frames not yet processed (less than a block at rest)
    private int nPending = 0;
    private boolean hasPrev = false;
    private double prev; // the last committed logit (its second tracker frame waits for the next)
    private long decided = 0; // tracker frames decided
    private boolean on = false; // the last decided frame's state is a runner
    private boolean hasLast = false;
    private long lastU; // tracker frame of the last step counted
    private double lastT; // its time

    private int nEvents = 0;
    private long frames = 0; // output frames committed so far
    private long activeFrames = 0;
    private long activeSteps = 0;
    private double peakCadence = Double.NaN; // NaN: none shown yet
    private final double[] intervals = new double[N_INTERVALS]; // ring of the last 8 intervals
    private int nIntervals = 0;
    private int intervalHead = 0; // slot of the next interval
    private final double[] sorted = new double[N_INTERVALS];
    // the open activity bins, a ring by bin index: a step lands at most ceil(binLag / binLen) bins
    // past the last bin closed
    private final int[] binSteps;
    private long binsClosed = 0;

    // the events of the call in progress
    private double[] out = EMPTY;
    private int nOut = 0;

    public Counter(CounterParams params) {
        this.params = params;
        this.binLen = (int) Math.rint(ACTIVE_BIN_S * fps);
        this.lagFrames = params.lagFrames();
        this.retroFrames = (int) Math.rint(RETRO_S * trackFps);

        int lo = params.periodMin();
        nTempi = params.nTempi();
        block = lo;
        // a block ends at the last committed frame's first tracker frame, decides up to lagFrames behind
        // it, and counts a confirmed run back retroFrames further from the frame decided before it
        this.binLag = 1 + (block + lagFrames + retroFrames + TRACK_RATE - 1) / TRACK_RATE;
        this.binSteps = new int[(int) (binLag / binLen) + 3];
        per = new int[nTempi];
        base = new int[nTempi];
        int states = 0;
        for (int i = 0; i < nTempi; i++) {
            per[i] = lo + i;
            base[i] = states;
            states += per[i];
        }
        tempoOf = new int[states];
        slotOf = new int[states];
        for (int i = 0; i < nTempi; i++) {
            for (int s = 0; s < per[i]; s++) {
                tempoOf[base[i] + s] = i;
                slotOf[base[i] + s] = s;
            }
        }
        trans = new double[nTempi * BAND];
        for (int i = 0; i < nTempi; i++) {
            for (int dj = -TEMPO_STEP; dj <= TEMPO_STEP; dj++) {
                int j = i + dj;
                // -tempo_lambda * (|p_j - p_i| / p_i), as numpy computes it
                trans[i * BAND + dj + TEMPO_STEP] = j < 0 || j >= nTempi ? NEG_INF
                        : -params.tempoLambda * ((double) Math.abs(per[j] - per[i]) / (double) per[i]);
            }
        }
        startCost = params.startCost();
        stopCost = params.stopCost();
        bias = params.bias();
        score = new double[states];
        Arrays.fill(score, NEG_INF);
        keep = lagFrames + retroFrames + 2 * block + 2;
        fromTempo = new short[keep * nTempi];
        fromOff = new short[keep];
        since = new long[keep];
        last = new double[nTempi];
        pathOn = new boolean[keep];
        pathSteps = new long[keep / block + 2]; // steps are at least a block apart
        pending = new double[block + 2];
    }

    public Counter() {
        this(CounterParams.DEFAULTS);
    }

    public CounterParams params() {
        return params;
    }

    /** Tracker frames per block: the shortest step period. */
    public int block() {
        return block;
    }

    /** Tracker frames whose back-pointers are kept. */
    public int keep() {
        return keep;
    }

    /** The score of a change of step period from tempo {@code from} to {@code to} (-inf beyond {@link #TEMPO_STEP}). */
    double tempoCost(int from, int to) {
        int d = to - from;
        return d < -TEMPO_STEP || d > TEMPO_STEP ? NEG_INF : trans[from * BAND + d + TEMPO_STEP];
    }

    /** Output frames a step is never older than: activity bins close this far behind the committed audio. */
    public long binLagFrames() {
        return binLag;
    }

    /** The count so far (a double, as every layer reports counts). */
    public double steps() {
        return nEvents;
    }

    /** Step events counted so far. */
    public int nEvents() {
        return nEvents;
    }

    /** Output frames committed so far. */
    public long frames() {
        return frames;
    }

    /** Audio time (s) up to which the model's output is committed. */
    public double tFinal() {
        return frames / (double) fps;
    }

    /** Audio time (s) up to which the tracker has decided ({@link #tFinal()} less the lag, about). */
    public double tDecided() {
        return decided / (double) trackFps;
    }

    // ---- the driver ----

    /**
     * Add the next committed logits {@code logits[lo..hi)} in stream order.
     *
     * @return the times (s) of the steps counted by them (a run's first steps are counted late,
     *     with their times); often empty
     */
    public double[] commit(float[] logits, int lo, int hi) {
        out = EMPTY;
        nOut = 0;
        for (int i = lo; i < hi; i++) {
            double v = logits[i];
            if (hasPrev) {
                pending[nPending++] = prev;
                pending[nPending++] = 0.5 * (prev + v);
            }
            prev = v;
            hasPrev = true;
            frames++;
            if (nPending >= block) {
                runBlock(block, false);
            }
            if (frames % binLen == 0) {
                closeBins(frames - binLag);
            }
        }
        return collected();
    }

    public double[] commit(float[] logits) {
        return commit(logits, 0, logits.length);
    }

    /** End of stream: the last logit's frames, then every frame left decided from the best final path, and every bin closed. */
    public double[] flush() {
        out = EMPTY;
        nOut = 0;
        if (hasPrev) {
            pending[nPending++] = prev;
            pending[nPending++] = prev;
            hasPrev = false;
        }
        while (nPending > 0) {
            runBlock(Math.min(block, nPending), nPending <= block);
        }
        closeBins(frames + binLen);
        return collected();
    }

    /** Process the first {@code b} pending frames as one block, drop them, and decide what the lag allows. */
    private void runBlock(int b, boolean isFinal) {
        track(pending, b);
        nPending -= b;
        System.arraycopy(pending, b, pending, 0, nPending);
        long upto = isFinal ? t : t - lagFrames;
        if (upto <= decided) return;
        long lo = decided;
        path(lo, isFinal);
        if (pathOn[0] && !on) { // a run confirmed at the first frame decided: its steps before it count too
            lo = Math.max(0, lo - retroFrames);
            path(lo, isFinal);
            int j = (int) (decided - lo);
            while (j > 0 && pathOn[j - 1]) j--;
            for (int k = nPathSteps - 1; k >= 0; k--) {
                long u = pathSteps[k];
                if (lo + j <= u && u < decided) step(u);
            }
        }
        for (int k = nPathSteps - 1; k >= 0; k--) { // (a run confirmed later: its steps start within the frames decided)
            long u = pathSteps[k];
            if (decided <= u && u < upto) step(u);
        }
        on = pathOn[(int) (upto - 1 - lo)];
        decided = upto;
    }

    private void step(long u) {
        if (hasLast && u - lastU < MIN_GAP) return;
        double time = (u + 1) / (double) trackFps; // tracker frame 2j is output frame j, whose centre is (j + 0.5) / 25 s
        lastU = u;
        if (hasLast) {
            intervals[intervalHead] = time - lastT;
            intervalHead = (intervalHead + 1) % N_INTERVALS;
            nIntervals = Math.min(nIntervals + 1, N_INTERVALS);
        }
        hasLast = true;
        lastT = time;
        nEvents++;
        if (nOut == out.length) out = Arrays.copyOf(out, Math.max(4, 2 * nOut));
        out[nOut++] = time;
        long b = (long) (time * fps) / binLen;
        if (b >= binsClosed) { // (a step in a bin already closed is not active time, as in Python)
            if (b - binsClosed >= binSteps.length) { // a step is never later than the committed audio
                throw new IllegalStateException("step at " + time + " s is past the committed audio (" + tFinal() + " s)");
            }
            binSteps[(int) (b % binSteps.length)]++;
        }
        double cadence = shownCadenceOrNaN();
        if (!Double.isNaN(cadence) && nIntervals >= 6) {
            peakCadence = Double.isNaN(peakCadence) || cadence > peakCadence ? cadence : peakCadence;
        }
    }

    // ---- the tracker: Viterbi recursion and traceback ----

    /**
     * Process one block: {@code e[0..b)} ({@code b <= block}) interpolated logits at frames
     * {@code t .. t + b - 1}. Frame by frame, which equals Python's whole-block arrays: the
     * periods ending in a block were written before it (every period is at least a block long),
     * and no two frames of a block write one slot.
     */
    private void track(double[] e, int b) {
        final int n = nTempi;
        for (int k = 0; k < b; k++) {
            long u = t + k;
            int ring = (int) (u % keep);
            // the periods of every tempo that end at u (phase p - 1 at u - 1): the slot the step at u overwrites
            int stopFrom = 0;
            for (int i = 0; i < n; i++) {
                last[i] = score[base[i] + (int) (u % per[i])];
                if (last[i] > last[stopFrom]) stopFrom = i; // numpy argmax: the first of equal maxima
            }
            // off: stop at u if a period ends better than staying off
            double stop = last[stopFrom] + stopCost;
            double offBefore = off;
            short fo = -1;
            if (stop > offBefore) {
                off = stop;
                fo = (short) stopFrom;
                offSince = u;
            }
            fromOff[ring] = fo;
            since[ring] = offSince;
            // a step at u at tempo j: from the best ended period of tempo i (+ the change's cost), or from off
            double started = offBefore + startCost;
            double x = e[k] + bias;
            int row = ring * n;
            for (int j = 0; j < n; j++) {
                int iLo = Math.max(0, j - TEMPO_STEP);
                int iHi = Math.min(n - 1, j + TEMPO_STEP);
                int bestFrom = iLo;
                double best = last[iLo] + trans[iLo * BAND + (j - iLo + TEMPO_STEP)];
                for (int i = iLo + 1; i <= iHi; i++) {
                    double c = last[i] + trans[i * BAND + (j - i + TEMPO_STEP)];
                    if (c > best) {
                        best = c;
                        bestFrom = i;
                    }
                }
                // (where every candidate is -inf, numpy's argmax would name another tempo: unseen, as the
                // start, always finite, then wins)
                short src = (short) bestFrom;
                if (started > best) {
                    best = started;
                    src = -1;
                }
                score[base[j] + (int) (u % per[j])] = best + x;
                fromTempo[row + j] = src;
            }
        }
        // normalise by the best score (or off), as Python does at the end of a block
        double m = off;
        double top = score[argmax(score)];
        if (top > m) m = top;
        for (int s = 0; s < score.length; s++) score[s] -= m;
        off -= m;
        t += b;
    }

    /** numpy's argmax: the first index of the maximum. */
    private static int argmax(double[] a) {
        int k = 0;
        for (int s = 1; s < a.length; s++) {
            if (a[s] > a[k]) k = s;
        }
        return k;
    }

    /**
     * The best path over frames {@code lo .. t - 1}: {@link #pathOn} (a runner's frame, indexed
     * from {@code lo}) and {@link #pathSteps} (its step frames, descending). Traced back from the
     * best state at frame {@code t - 1}: the best score's (the first of equal ones) if it beats
     * off, where at the end of the stream ({@code isFinal}) a runner still running pays the stop;
     * a stretch of off is crossed at once, back to the stop that began it.
     */
    private void path(long lo, boolean isFinal) {
        Arrays.fill(pathOn, 0, (int) (t - lo), false);
        nPathSteps = 0;
        int si; // the state: a tempo or -1 (off), and its phase
        int sp = 0;
        int k0 = argmax(score);
        if (score[k0] + (isFinal ? stopCost : 0.0) > off) {
            si = tempoOf[k0];
            sp = (int) Math.floorMod(t - 1 - slotOf[k0], (long) per[si]);
        } else {
            si = -1;
        }
        long u = t - 1;
        while (u >= lo) {
            if (si < 0) { // off since the stretch began, then the tempo that stopped (or the start)
                long v = since[(int) (u % keep)];
                if (v <= lo) break;
                si = fromOff[(int) (v % keep)];
                sp = per[si] - 1;
                u = v - 1;
                continue;
            }
            Arrays.fill(pathOn, (int) (Math.max(lo, u - sp) - lo), (int) (u + 1 - lo), true);
            u -= sp; // the step at u
            if (u < lo) break;
            pathSteps[nPathSteps++] = u;
            int j = fromTempo[(int) (u % keep) * nTempi + si];
            if (j < 0) {
                si = -1;
            } else {
                si = j;
                sp = per[j] - 1;
            }
            u -= 1;
        }
    }

    // ---- the cadence ----

    /**
     * The local step period (s): the mean of the last 8 step intervals (at least 3) without their
     * shortest and longest (robust to one miss or echo), or null.
     */
    public Double period() {
        double p = periodOrNaN();
        return Double.isNaN(p) ? null : p;
    }

    private double periodOrNaN() {
        int n = nIntervals;
        if (n < 3) return Double.NaN;
        System.arraycopy(intervals, 0, sorted, 0, n); // the ring's order does not matter once sorted
        Arrays.sort(sorted, 0, n);
        double sum = 0.0;
        for (int i = 1; i < n - 1; i++) sum += sorted[i]; // left to right, as Python's loop adds them
        return sum / (n - 2);
    }

    // ---- a runner's figures ----

    /** Close the activity bins that end at or before {@code uptoFrame}: no step can land in them now. */
    private void closeBins(long uptoFrame) {
        long lastBin = Math.floorDiv(Math.min(uptoFrame, frames + binLen), binLen);
        for (long b = binsClosed; b < lastBin; b++) {
            int slot = (int) (b % binSteps.length);
            int n = binSteps[slot];
            binSteps[slot] = 0;
            long length = Math.min(binLen, frames - b * binLen);
            if (length > 0 && n * 60.0 * fps / length >= ACTIVE_MIN_SPM) {
                activeFrames += length;
                activeSteps += n;
            }
        }
        binsClosed = Math.max(binsClosed, lastBin);
    }

    public long activeFrames() {
        return activeFrames;
    }

    public long activeSteps() {
        return activeSteps;
    }

    /** Active time (s): the time of the closed active bins. */
    public double activeSeconds() {
        return activeFrames / (double) fps;
    }

    /** Steps per active minute, or null before any active bin. */
    public Double meanCadence() {
        return activeFrames != 0 ? activeSteps * 60.0 * fps / activeFrames : null;
    }

    /** The highest cadence shown so far, or null. */
    public Double peakCadence() {
        return Double.isNaN(peakCadence) ? null : peakCadence;
    }

    /** The current cadence: 60 / the local step period while the tracker follows a runner, else 0. */
    public double cadenceSpm() {
        double period = periodOrNaN();
        return on && !Double.isNaN(period) && period != 0.0 ? 60.0 / period : 0.0;
    }

    /** The cadence a runner is shown: null while warming up or while no steps run. */
    public Double shownCadence() {
        double c = shownCadenceOrNaN();
        return Double.isNaN(c) ? null : c;
    }

    private double shownCadenceOrNaN() {
        return cadenceState() == CadenceState.STEPS ? cadenceSpm() : Double.NaN;
    }

    /** Warming up (too little audio committed), no steps (the tracker has decided on no runner, or not yet on one), or steps. */
    public CadenceState cadenceState() {
        if (frames < CADENCE_MIN_S * fps) return CadenceState.WARMING_UP;
        return cadenceSpm() >= ACTIVE_MIN_SPM ? CadenceState.STEPS : CadenceState.NO_STEPS;
    }

    private double[] collected() {
        double[] r = nOut == out.length ? out : Arrays.copyOf(out, nOut);
        out = EMPTY;
        nOut = 0;
        return r;
    }
}
