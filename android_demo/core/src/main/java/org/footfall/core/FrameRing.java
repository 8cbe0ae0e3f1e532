package org.footfall.core;

/**
 * A fixed-capacity ring of log-mel frames addressed by absolute frame index: the Java twin of
 * {@code edge.ringbuffer.FrameRing}. Written one frame at a time as the front end produces
 * them; read as a model window in the model's band-major (64, T) layout.
 *
 * <p>The engine keeps {@code W + DENSITY_STRIDE} frames: one window plus what the end-of-stream
 * tail window may reach back. Storage is band-major ({@code buf[m * capacity + pos]}), so a
 * window read is two array copies per band and nothing is allocated after construction.
 */
public final class FrameRing {
    private final int rows;
    private final int capacity;
    private final float[] buf;
    private long written = 0; // absolute index of the next frame to be written

    public FrameRing(int rows, int capacity) {
        if (capacity <= 0) throw new IllegalArgumentException("capacity must be positive, got " + capacity);
        this.rows = rows;
        this.capacity = capacity;
        this.buf = new float[rows * capacity];
    }

    public int capacity() {
        return capacity;
    }

    /** Absolute index of the next frame to be written (= frames written so far). */
    public long written() {
        return written;
    }

    /** Absolute index of the oldest frame still held. */
    public long oldest() {
        return Math.max(0, written - capacity);
    }

    public void reset() {
        java.util.Arrays.fill(buf, 0f);
        written = 0;
    }

    /** Append one frame of {@code rows} values. */
    public void write(float[] frame) {
        if (frame.length != rows) throw new IllegalArgumentException("frame has " + frame.length + " values, expected " + rows);
        int pos = (int) (written % capacity);
        for (int m = 0; m < rows; m++) buf[m * capacity + pos] = frame[m];
        written++;
    }

    /**
     * Copy frames {@code [start, start + n)} into {@code out}, band-major with row stride
     * {@code outCols}: {@code out[m * outCols + t]} for {@code t < n}.
     */
    public void readInto(long start, int n, float[] out, int outCols) {
        if (start < oldest() || start + n > written) {
            throw new IndexOutOfBoundsException("frames [" + start + ", " + (start + n) + ") not held (ring holds ["
                    + oldest() + ", " + written + "), capacity " + capacity + ")");
        }
        int pos = (int) (start % capacity);
        int first = Math.min(n, capacity - pos);
        for (int m = 0; m < rows; m++) {
            System.arraycopy(buf, m * capacity + pos, out, m * outCols, first);
            System.arraycopy(buf, m * capacity, out, m * outCols + first, n - first);
        }
    }
}
