import java.io.FileInputStream;
import java.security.cert.*;
import java.util.*;

/**
 * Validates a certificate against a trust anchor and CRLs with Java's PKIX CertPathValidator:
 * PkixCheck [--at SECONDS] ANCHOR EE [FILE…], each FILE a CRL (*.crl, DER or PEM) or a certificate of the path, in
 * order from the end entity's issuer up to the one the anchor issued (e.g. a link certificate of a key rollover).
 * --at validates at that time (seconds since 1970, as openssl verify -attime; PKIXParameters.setDate): the
 * certificates' validity and which CRLs are current (thisUpdate to nextUpdate) are judged then, not now.
 */
public class PkixCheck {
  public static void main(String[] args) throws Exception {
    Date at = null;
    String[] a = args;
    if (a.length >= 2 && a[0].equals("--at")) {
      at = new Date(Long.parseLong(a[1]) * 1000L);
      a = Arrays.copyOfRange(a, 2, a.length);
    }
    CertificateFactory cf = CertificateFactory.getInstance("X.509");
    X509Certificate ca = (X509Certificate) cf.generateCertificate(new FileInputStream(a[0]));
    X509Certificate ee = (X509Certificate) cf.generateCertificate(new FileInputStream(a[1]));
    List<Object> stores = new ArrayList<>();
    List<X509Certificate> path = new ArrayList<>(List.of(ee));
    for (int i = 2; i < a.length; i++) {
      if (a[i].endsWith(".crl")) stores.add(cf.generateCRL(new FileInputStream(a[i])));
      else path.add((X509Certificate) cf.generateCertificate(new FileInputStream(a[i])));
    }
    PKIXParameters p = new PKIXParameters(Collections.singleton(new TrustAnchor(ca, null)));
    p.setRevocationEnabled(true);
    if (at != null) p.setDate(at);
    p.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(stores)));
    try {
      CertPathValidator.getInstance("PKIX").validate(cf.generateCertPath(path), p);
      System.out.println("VALID");
    } catch (CertPathValidatorException e) {
      System.out.println("INVALID " + e.getReason() + " " + e.getMessage());
      System.exit(1);
    } catch (StackOverflowError e) {
      // JDK 17's RevocationChecker, with no current CRL from a link's issuer or subject key but a current one from
      // another generation under the same name, recurses building a path to that CRL's key until the stack ends:
      // not a verdict, said as one line rather than a stack trace.
      System.out.println("ERROR " + e.getClass().getName());
      System.exit(2);
    }
  }
}
