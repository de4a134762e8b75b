import java.io.FileInputStream;
import java.security.cert.*;
import java.util.*;

/**
 * Validates a certificate against a trust anchor and CRLs with Java's PKIX CertPathValidator:
 * PkixCheck ANCHOR EE [FILE…], each FILE a CRL (*.crl, DER or PEM) or a certificate of the path, in order from the
 * end entity's issuer up to the one the anchor issued (e.g. a link certificate of a key rollover).
 */
public class PkixCheck {
  public static void main(String[] a) throws Exception {
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
    p.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(stores)));
    try {
      CertPathValidator.getInstance("PKIX").validate(cf.generateCertPath(path), p);
      System.out.println("VALID");
    } catch (CertPathValidatorException e) {
      System.out.println("INVALID " + e.getReason() + " " + e.getMessage());
      System.exit(1);
    }
  }
}
