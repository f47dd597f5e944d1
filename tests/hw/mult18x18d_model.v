// Behavioural model of the subset of Lattice ECP5 MULT18X18D that sushi_hw.dsp uses.
//
// OUR OWN MODEL, written for the tests from the documented semantics (Lattice TN1267, "ECP5
// and ECP5-5G sysDSP Usage Guide", and the port/parameter list of Yosys's black box
// share/ecp5/cells_bb.v). It is not a vendor model and it is not cycle-checked against
// silicon. Yosys ships only a black box for MULT18X18D, so this is what the instance is
// simulated against.
//
// Modelled: P = A * B, 36 bits; SIGNEDA/SIGNEDB choose two's complement (1) or unsigned (0)
// for the 18-bit A/B (a signed product is sign-extended to 36 bits); optional input
// registers on A/SIGNEDA and B/SIGNEDB (REG_INPUTA_CLK / REG_INPUTB_CLK) and an optional
// output register on P (REG_OUTPUT_CLK), each either "NONE" or clocked by CLK0 with clock
// enable CE0 and synchronous reset RST0 (RESETMODE "SYNC"); every register is 0 after
// configuration (GSR "ENABLED").
// Not modelled (the model stops the simulation if they are asked for): other clocks, clock
// enables or resets (CLK1-3/CE1-3/RST1-3), the pipeline register, the shift chains
// (SOURCEA/SOURCEB must be 0), MULT_BYPASS, cascading to ALU54B, asynchronous reset. The C
// input only feeds the ALU54B, so it is ignored. ROA/ROB/ROC/SROA/SROB are left undriven.
`default_nettype none
module MULT18X18D(
    input wire A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input wire B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input wire C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input wire SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input wire CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
    input wire SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0,
    input wire SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0,
    output wire P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0,
    output wire SIGNEDP
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};

    // parameter checks: anything outside the modelled subset is an error, not a guess
    initial begin
        if (!((REG_INPUTA_CLK == "NONE" || REG_INPUTA_CLK == "CLK0") && REG_INPUTA_CE == "CE0"
              && REG_INPUTA_RST == "RST0"
              && (REG_INPUTB_CLK == "NONE" || REG_INPUTB_CLK == "CLK0") && REG_INPUTB_CE == "CE0"
              && REG_INPUTB_RST == "RST0"
              && (REG_OUTPUT_CLK == "NONE" || REG_OUTPUT_CLK == "CLK0") && REG_OUTPUT_CE == "CE0"
              && REG_OUTPUT_RST == "RST0"
              && REG_PIPELINE_CLK == "NONE" && REG_INPUTC_CLK == "NONE"
              && MULT_BYPASS == "DISABLED" && CAS_MATCH_REG == "FALSE"
              && RESETMODE == "SYNC" && GSR == "ENABLED" && HIGHSPEED_CLK == "NONE")) begin
            $display("MULT18X18D model: unsupported parameters in %m");
            $fatal(1);
        end
    end
    always @(posedge CLK0)
        if (SOURCEA !== 1'b0 || SOURCEB !== 1'b0 || CE0 === 1'bx || RST0 === 1'bx) begin
            $display("MULT18X18D model: SOURCEA/SOURCEB must be 0 and CE0/RST0 driven in %m");
            $fatal(1);
        end

    // input registers (A with SIGNEDA, B with SIGNEDB)
    reg [17:0] a_q = 18'd0, b_q = 18'd0;
    reg sa_q = 1'b0, sb_q = 1'b0;
    always @(posedge CLK0)
        if (RST0) begin
            a_q <= 18'd0; sa_q <= 1'b0; b_q <= 18'd0; sb_q <= 1'b0;
        end else if (CE0) begin
            a_q <= a_in; sa_q <= SIGNEDA; b_q <= b_in; sb_q <= SIGNEDB;
        end
    wire [17:0] a = (REG_INPUTA_CLK == "CLK0") ? a_q : a_in;
    wire sa = (REG_INPUTA_CLK == "CLK0") ? sa_q : SIGNEDA;
    wire [17:0] b = (REG_INPUTB_CLK == "CLK0") ? b_q : b_in;
    wire sb = (REG_INPUTB_CLK == "CLK0") ? sb_q : SIGNEDB;

    // the multiplier: operands extended to 36 bits by their signedness; the low 36 bits of
    // the product of the extended operands are the exact (signed or unsigned) product
    wire [35:0] a36 = {{18{sa & a[17]}}, a};
    wire [35:0] b36 = {{18{sb & b[17]}}, b};
    wire [35:0] prod = a36 * b36;

    // output register
    reg [35:0] p_q = 36'd0;
    reg sp_q = 1'b0;
    always @(posedge CLK0)
        if (RST0) begin
            p_q <= 36'd0; sp_q <= 1'b0;
        end else if (CE0) begin
            p_q <= prod; sp_q <= sa | sb;
        end
    wire [35:0] p = (REG_OUTPUT_CLK == "CLK0") ? p_q : prod;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
    assign SIGNEDP = (REG_OUTPUT_CLK == "CLK0") ? sp_q : (sa | sb);
endmodule
`default_nettype wire
