// A Domo Action: finds the Sample CRM opportunity named by the parameter 'Opportunity Name'.
// An action answers the first cell of its datagrid: here the opportunity as a JSON object,
// which the action endpoint returns parsed.
var encodedData = DOMO.b64EncodeUnicode(metadata.account.username + ':' + metadata.account.password);
httprequest.addHeader('Authorization', 'Basic ' + encodedData);
var res = httprequest.get('https://developer.domo.com/samplecrm');
var wanted = metadata.parameters['Opportunity Name'];

if (httprequest.getStatusCode() != 200) {
    datagrid.error(httprequest.getStatusCode(), 'The Sample CRM answered ' + httprequest.getStatusCode());
} else {
    // Lines end in '\r'; the first names the columns.
    var lines = res.split('\r');
    var header = lines[0].split(',');
    var found = null;
    for (var i = 1; i < lines.length && found === null; i++) {
        var cells = lines[i].split(',');
        var row = {};
        for (var j = 0; j < header.length; j++) {
            row[header[j]] = cells[j];
        }
        if (row['Name'] === wanted) {
            found = {
                id: row['Id'],
                name: row['Name'],
                account: row['Account.Name'],
                stage: row['StageName'],
                amount: Number(row['Amount']),
                closeDate: row['CloseDate']
            };
        }
    }
    if (found === null) {
        datagrid.error('not_found', 'No opportunity is named ' + JSON.stringify(wanted));
    } else {
        datagrid.addColumn('opportunity', datagrid.DATA_TYPE_STRING);
        datagrid.addCell(JSON.stringify(found));
        datagrid.endRow();
    }
}
