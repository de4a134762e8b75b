/** The Bridge CA's id where a CA id goes (its URLs <baseUrl>/arl/bridge.crl, /ca/bridge.crt). Light: the server imports it. */
export const BRIDGE_ID = "bridge";
