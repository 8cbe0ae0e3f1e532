package org.footfall.core;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Minimal reader of NumPy {@code .npy} files holding a C-ordered little-endian float32 array
 * (what {@code np.save} writes for {@code edge/assets/mel_filters.npy}), and of raw
 * little-endian float32 files (the golden vectors' {@code .f32} files).
 */
public final class Npy {
    private Npy() {}

    /** A float32 array and its shape. */
    public static final class FloatArray {
        public final int[] shape;
        public final float[] data;

        public FloatArray(int[] shape, float[] data) {
            this.shape = shape;
            this.data = data;
        }
    }

    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    public static FloatArray readFloat32(InputStream in) throws IOException {
        return parse(readAll(in));
    }

    public static FloatArray parse(byte[] bytes) throws IOException {
        if (bytes.length < 10 || (bytes[0] & 0xff) != 0x93
                || !"NUMPY".equals(new String(bytes, 1, 5, StandardCharsets.US_ASCII))) {
            throw new IOException("not a .npy file (bad magic)");
        }
        int major = bytes[6] & 0xff;
        ByteBuffer bb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int headerLen;
        int headerStart;
        if (major == 1) {
            headerLen = bb.getShort(8) & 0xffff;
            headerStart = 10;
        } else if (major == 2 || major == 3) {
            headerLen = bb.getInt(8);
            headerStart = 12;
        } else {
            throw new IOException("unsupported .npy version " + major);
        }
        String header = new String(bytes, headerStart, headerLen, StandardCharsets.ISO_8859_1);
        Matcher m = DESCR.matcher(header);
        if (!m.find() || !("<f4".equals(m.group(1)) || "float32".equals(m.group(1)))) {
            throw new IOException(".npy dtype must be little-endian float32 '<f4', header: " + header.trim());
        }
        m = FORTRAN.matcher(header);
        if (m.find() && "True".equals(m.group(1))) {
            throw new IOException(".npy array must be C-ordered (fortran_order False)");
        }
        m = SHAPE.matcher(header);
        if (!m.find()) {
            throw new IOException(".npy header has no shape: " + header.trim());
        }
        String[] parts = m.group(1).split(",");
        int count = 0;
        for (String p : parts) {
            if (!p.trim().isEmpty()) count++;
        }
        int[] shape = new int[count];
        long total = 1;
        int i = 0;
        for (String p : parts) {
            if (p.trim().isEmpty()) continue;
            shape[i] = Integer.parseInt(p.trim());
            total *= shape[i];
            i++;
        }
        int dataStart = headerStart + headerLen;
        if (bytes.length - dataStart != total * 4) {
            throw new IOException(".npy data holds " + (bytes.length - dataStart) + " bytes, shape needs " + total * 4);
        }
        float[] data = new float[(int) total];
        bb.position(dataStart);
        bb.asFloatBuffer().get(data);
        return new FloatArray(shape, data);
    }

    /** Raw little-endian float32 values (a golden {@code .f32} file). */
    public static float[] readRawFloat32(InputStream in) throws IOException {
        byte[] bytes = readAll(in);
        if (bytes.length % 4 != 0) {
            throw new IOException("raw float32 file length " + bytes.length + " is not a multiple of 4");
        }
        float[] out = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[1 << 16];
        int r;
        while ((r = in.read(buf)) != -1) {
            out.write(buf, 0, r);
        }
        return out.toByteArray();
    }
}
