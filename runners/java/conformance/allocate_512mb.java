import java.util.*;
public class Main { public static void main(String[] a) { List<byte[]> l = new ArrayList<>(); for (int i = 0; i < 512; i++) { byte[] b = new byte[1 << 20]; Arrays.fill(b, (byte) 1); l.add(b); } System.out.println(l.size()); } }
