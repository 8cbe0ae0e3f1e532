package org.footfall.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Which density frames each model window commits: the Java twin of
 * {@code edge.counter.Alignment} (same rules, same numbers; see that module's docstring).
 *
 * <p>In density frames ({@code Wd = W / 4}, {@code Hd = H / 4}, commit offset
 * {@code c = (Wd - Hd) / 2}, or {@code c = Wd - Hd - L / 4} with a lookahead of {@code L}
 * front-end frames (the committed hop then ends {@code L} frames before the window's end: a step
 * is counted sooner, with less right-hand context); window {@code k} covers front-end frames
 * {@code [k H, k H + W)}):
 * window {@code k} commits local {@code [c, c + Hd)} (window 0 also its head {@code [0, c)});
 * at the end of a stream of {@code F} frames one tail window, starting at
 * {@code max(0, 4 (F / 4) - W)}, commits what is left up to density frame {@code F / 4}.
 * The rules depend only on frame counts, never on how the audio was cut into blocks.
 *
 * <p>A {@link #stateful} schedule is a streaming model's (it carries state between calls):
 * window == hop == the packet, no lookahead, each packet committed whole and once; its tail is the
 * remaining frames as one packet, padded, starting at the first uncommitted frame (it never
 * reaches back: the state has seen every committed frame).
 */
public final class Alignment {
    /** One window of a plan: its first front-end frame and the local density range it commits. */
    public static final class Window {
        public final int startFrame;
        public final int lo;
        public final int hi;

        public Window(int startFrame, int lo, int hi) {
            this.startFrame = startFrame;
            this.lo = lo;
            this.hi = hi;
        }

        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Window)) return false;
            Window w = (Window) o;
            return startFrame == w.startFrame && lo == w.lo && hi == w.hi;
        }

        @Override
        public int hashCode() {
            return (startFrame * 31 + lo) * 31 + hi;
        }

        @Override
        public String toString() {
            return "(" + startFrame + ", " + lo + ", " + hi + ")";
        }
    }

    public final int windowFrames; // W
    public final int hopFrames; // H
    public final int stride;
    /** L in front-end frames, or -1: the centre hop ({@code (W - H) / 2}, rounded down to the stride). */
    public final int lookaheadFrames;
    /** A streaming model's schedule: W == H, each packet once, the tail never reaches back. */
    public final boolean stateful;

    /** The centre schedule: each window commits its centre hop. */
    public Alignment(int windowFrames, int hopFrames, int stride) {
        this(windowFrames, hopFrames, stride, CENTRE);
    }

    /** The centre hop, as {@code lookaheadFrames}. */
    public static final int CENTRE = -1;

    /**
     * A schedule with a lookahead: each window commits the hop that ends {@code lookaheadFrames}
     * before its end ({@link #CENTRE}: its centre hop).
     */
    public Alignment(int windowFrames, int hopFrames, int stride, int lookaheadFrames) {
        this(windowFrames, hopFrames, stride, lookaheadFrames, false);
    }

    /**
     * Any schedule; {@code stateful}: a streaming model's, which needs {@code hopFrames ==
     * windowFrames} (the packet) and no lookahead ({@link #CENTRE}).
     */
    public Alignment(int windowFrames, int hopFrames, int stride, int lookaheadFrames, boolean stateful) {
        if (!(hopFrames > 0 && hopFrames <= windowFrames)) {
            throw new IllegalArgumentException("hop_frames " + hopFrames + " must be in (0, window_frames " + windowFrames + "]");
        }
        if (stride <= 0 || windowFrames % stride != 0 || hopFrames % stride != 0) {
            throw new IllegalArgumentException("window_frames " + windowFrames + " and hop_frames " + hopFrames
                    + " must be multiples of the density stride " + stride);
        }
        if (lookaheadFrames != CENTRE
                && (lookaheadFrames % stride != 0 || lookaheadFrames < 0 || lookaheadFrames > windowFrames - hopFrames)) {
            throw new IllegalArgumentException("lookahead_frames " + lookaheadFrames + " must be a multiple of " + stride
                    + " in [0, " + (windowFrames - hopFrames) + "] (window " + windowFrames + " - hop " + hopFrames + ")");
        }
        if (stateful && (hopFrames != windowFrames || lookaheadFrames != CENTRE)) {
            throw new IllegalArgumentException("a streaming model takes each packet once: hop " + hopFrames
                    + " must equal the packet " + windowFrames + ", no lookahead");
        }
        this.windowFrames = windowFrames;
        this.hopFrames = hopFrames;
        this.stride = stride;
        this.lookaheadFrames = lookaheadFrames;
        this.stateful = stateful;
    }

    public Alignment(int windowFrames, int hopFrames) {
        this(windowFrames, hopFrames, Counter.DENSITY_STRIDE);
    }

    public int windowD() {
        return windowFrames / stride;
    }

    public int hopD() {
        return hopFrames / stride;
    }

    /** c: first committed density frame of a window (after window 0). */
    public int commitOffsetD() {
        if (lookaheadFrames == CENTRE) {
            return (windowD() - hopD()) / 2;
        }
        return windowD() - hopD() - lookaheadFrames / stride;
    }

    /** Front-end frames between the newest audio a window sees and the end of its commit. */
    public int latencyFrames() {
        return windowFrames - hopFrames - commitOffsetD() * stride;
    }

    public double latencySeconds() {
        return latencyFrames() / (double) FrontEnd.FRAMES_PER_SECOND;
    }

    public long windowStart(long k) {
        return k * hopFrames;
    }

    public long windowEnd(long k) {
        return k * hopFrames + windowFrames;
    }

    /** Local density range [lo, hi) regular window k commits, as {lo, hi}. */
    public int[] commit(long k) {
        int c = commitOffsetD();
        return new int[] {k == 0 ? 0 : c, c + hopD()};
    }

    /** Global density frames committed once regular windows 0..nWindows-1 have run. */
    public long committedAfter(long nWindows) {
        return nWindows == 0 ? 0 : (nWindows - 1) * hopD() + commitOffsetD() + hopD();
    }

    /** Regular windows that fit in {@code nFrames} front-end frames. */
    public long nWindows(long nFrames) {
        return nFrames < windowFrames ? 0 : (nFrames - windowFrames) / hopFrames + 1;
    }

    /** The final window of a stream of {@code nFrames} frames, or null if nothing is left. */
    public Window tail(long nFrames, long committedD) {
        long totalD = nFrames / stride;
        if (committedD >= totalD) {
            return null;
        }
        if (stateful) { // the state has seen every committed frame: the rest, padded, as one packet
            return new Window((int) (committedD * stride), 0, (int) (totalD - committedD));
        }
        long start = Math.max(0, totalD * stride - windowFrames);
        long firstD = start / stride;
        return new Window((int) start, (int) (committedD - firstD), (int) (totalD - firstD));
    }

    /** Every window of a stream of {@code nFrames} frames, the tail last. */
    public List<Window> plan(long nFrames) {
        List<Window> out = new ArrayList<>();
        long n = nWindows(nFrames);
        for (long k = 0; k < n; k++) {
            int[] c = commit(k);
            out.add(new Window((int) windowStart(k), c[0], c[1]));
        }
        Window t = tail(nFrames, committedAfter(n));
        if (t != null) out.add(t);
        return out;
    }
}
