// Behavioural model of the subset of Lattice ECP5 DP16KD that sushi_hw.bram uses.
//
// OUR OWN MODEL, written for the tests from the documented semantics (Lattice TN1264, "ECP5
// and ECP5-5G Memory Usage Guide") and from how Yosys maps its own memories onto the block
// (share/lattice/brams_map_16kd.v: data on DI/DO bits from 0, the word address in AD[13:k] for
// k = 4, 3, 2, 1, 0 at widths 18, 9, 4, 2, 1, byte enables in AD[1:0] at width 18). It is not
// a vendor model and it is not cycle-checked against silicon; Yosys has no simulation model
// of DP16KD.
//
// Modelled: port A writes (CLKA rising, CEA and WEA high, CSA = CSDECODE_A), port B reads into
// its read latch (CLKB rising, CEB high, CSB = CSDECODE_B); REGMODE_B "OUTREG" adds the output
// register (loads the latch when OCEB is high), "NOREG" shows the latch. Both ports at the
// same width, WRITEMODE "NORMAL", no resets asserted, all zero after configuration.
// Not modelled (the model stops the simulation if they are asked for): different widths per
// port, reads on port A or writes on port B, byte enables other than both set, resets.
`default_nettype none
module DP16KD(
    input wire DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input wire ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input wire CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output wire DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input wire DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input wire ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input wire CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output wire DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter GSR = "ENABLED";

    localparam W = DATA_WIDTH_A;
    localparam K = W == 18 ? 4 : W == 9 ? 3 : W == 4 ? 2 : W == 2 ? 1 : 0;
    localparam DEPTH = 16384 >> K;

    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire csa = {CSA2, CSA1, CSA0} == 3'b000;  // CSDECODE "0b000" (checked below)
    wire csb = {CSB2, CSB1, CSB0} == 3'b000;

    reg [W-1:0] mem [0:DEPTH-1];
    reg [W-1:0] latch_b = 0, out_b = 0;
    integer i;
    initial begin
        for (i = 0; i < DEPTH; i = i + 1) mem[i] = 0;
        if (DATA_WIDTH_A != DATA_WIDTH_B || (W != 18 && W != 9 && W != 4 && W != 2 && W != 1)) begin
            $display("FATAL: DP16KD model: unsupported widths %0d/%0d", DATA_WIDTH_A, DATA_WIDTH_B);
            $finish;
        end
        if (CSDECODE_A != "0b000" || CSDECODE_B != "0b000" || WRITEMODE_A != "NORMAL"
            || (REGMODE_B != "NOREG" && REGMODE_B != "OUTREG")) begin
            $display("FATAL: DP16KD model: unsupported parameters");
            $finish;
        end
    end

    always @(posedge CLKA) begin
        if (RSTA) begin
            $display("FATAL: DP16KD model: RSTA is not modelled");
            $finish;
        end
        if (CEA && WEA && csa) begin
            if (W == 18 && ada[1:0] != 2'b11) begin
                $display("FATAL: DP16KD model: partial byte enables are not modelled");
                $finish;
            end
            mem[ada[13:K]] <= dia[W-1:0];
        end
    end

    always @(posedge CLKB) begin
        if (RSTB || WEB) begin
            $display("FATAL: DP16KD model: RSTB and writes on port B are not modelled");
            $finish;
        end
        if (CEB && csb) latch_b <= mem[adb[13:K]];
        if (OCEB) out_b <= latch_b;
    end

    wire [17:0] dob = REGMODE_B == "OUTREG" ? out_b : latch_b;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = 18'd0;
endmodule
`default_nettype wire
